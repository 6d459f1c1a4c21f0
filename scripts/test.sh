#!/usr/bin/env bash
# The test command: set up (system packages + .venv with every extra), then run the whole test suite.
# CI runs exactly this (.ci/run).
#
# Usage: bash scripts/test.sh [--no-setup] [--no-browser] [PYTEST ARGS...]
#   --no-setup     skip scripts/setup.sh (it already ran)
#   --no-browser   do not install chromium; the browser tests then skip themselves
#   PYTEST ARGS    passed on to pytest (default: all of tests/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${FIRSTSPIKE_VENV:-$repo/.venv}
setup=1
setup_args=()
pytest_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --no-setup) setup=0; shift ;;
    --no-browser) setup_args+=(--no-browser); shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pytest_args+=("$1"); shift ;;
  esac
done

[[ $setup -eq 0 ]] || bash "$repo/scripts/setup.sh" "${setup_args[@]}"
[[ -x $venv/bin/pytest ]] || { echo "test: error: $venv/bin/pytest not found: run bash scripts/setup.sh" >&2; exit 1; }

cd "$repo"
echo "==> pytest ${pytest_args[*]:-tests/}"
rc=0
"$venv/bin/pytest" -ra "${pytest_args[@]}" || rc=$?
# pytest's 5 means no test ran at all: that is a broken suite, not a pass.
if [[ $rc -eq 5 ]]; then
  echo "test: error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
