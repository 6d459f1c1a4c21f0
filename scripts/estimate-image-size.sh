#!/usr/bin/env bash
# Estimate the Docker image's size without a Docker engine: run the builder's install steps
# (scripts/install-serve-venv.sh) on a copy of the build context and measure the virtualenv that the
# runtime stage copies. The image is then python:3.11-slim-bookworm plus this one layer.
#
# Usage: bash scripts/estimate-image-size.sh [--keep DIR]
#   --keep DIR   build in DIR (must not exist) and keep it: DIR/context, DIR/opt-firstspike
set -euo pipefail

die() { echo "estimate-image-size: error: $*" >&2; exit 1; }
keep=
while [[ $# -gt 0 ]]; do
  case $1 in
    --keep) [[ $# -ge 2 ]] || die "--keep needs a folder"; keep=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -n $keep ]]; then
  [[ ! -e $keep ]] || die "$keep already exists"
  mkdir -p "$keep"
  work=$(cd "$keep" && pwd)
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

# The build context, as .dockerignore lets it through.
mkdir -p "$work/context/scripts"
cp "$repo/pyproject.toml" "$repo/README.md" "$work/context/"
cp -r "$repo/src" "$work/context/"
find "$work/context" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +
cp "$repo/scripts/install-serve-venv.sh" "$work/context/scripts/"

echo "==> installing the serve extra as the image's builder does"
if ! (cd "$work/context" && bash scripts/install-serve-venv.sh "$work/opt-firstspike" "$work/context") >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  exit 1
fi

layer_kib=$(du -s --apparent-size -k "$work/opt-firstspike" | cut -f1)
echo "==> largest packages in the layer (MB)"
du -s --apparent-size -k "$work"/opt-firstspike/lib/python3*/site-packages/* \
  | sort -rn | awk 'NR <= 8' | awk '{printf "  %6.1f  %s\n", $1 * 1.024 / 1000, $2}' | sed "s|$work/opt-firstspike/lib/python3[.0-9]*/site-packages/||"
awk -v k="$layer_kib" 'BEGIN { printf "==> /opt/firstspike layer: %.1f MB (%.1f MiB)\n", k * 1.024 / 1000, k / 1024 }'
