#!/usr/bin/env bash
# Install the serving stack (the `serve` extra, no torch) into a fresh virtualenv, trimmed for an image.
#
# This is the one definition of the container's install steps: the Dockerfile's builder stage runs it,
# and tests/packaging runs it in a temporary folder to check the result without a Docker engine.
#
# Usage: bash scripts/install-serve-venv.sh VENV [SOURCE]
#   VENV     the virtualenv to create (must not exist yet)
#   SOURCE   the firstspike source tree: pyproject.toml, README.md, src/ (default: the current folder)
set -euo pipefail

die() { echo "install-serve-venv: error: $*" >&2; exit 1; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
[[ $# -ge 1 && $# -le 2 && $1 != -* ]] || die "usage: install-serve-venv.sh VENV [SOURCE] (see --help)"
venv=$1
source_dir=$(cd "${2:-.}" && pwd)
[[ -f $source_dir/pyproject.toml ]] || die "$source_dir has no pyproject.toml"
[[ ! -e $venv ]] || die "$venv already exists"

python3 -m venv "$venv"
# Not editable: the image holds a copy of the package (and its bundled model), not a link to the source.
# --no-compile: bytecode would add ~45 MB to the image; Python compiles what it imports at start-up.
"$venv/bin/python" -m pip install --quiet --no-compile "$source_dir[serve]"

# The serve extra must never drag torch in (directly or through a dependency).
if "$venv/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
  die "torch was installed by the serve extra"
fi

# Nothing in the image installs packages at run time, and numpy's own test suite is never run there.
"$venv/bin/python" -m pip uninstall --quiet --yes pip setuptools
find "$venv/lib" -depth -type d -path '*/site-packages/numpy/*' -name tests -exec rm -rf {} +
