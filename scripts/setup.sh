#!/usr/bin/env bash
# Set up firstspike on a fresh Debian machine: system packages, then the project's virtualenv.
#
# Idempotent: apt runs only for packages that are missing (one `apt-get update` first), and pip runs
# only when pyproject.toml or the requested extras changed since the last successful set-up.
#
# Usage: bash scripts/setup.sh [--extras LIST] [--minimal] [--no-browser] [--no-apt] [--venv PATH]
#   --extras LIST   comma-separated extras of the firstspike package (default: dev = everything)
#   --minimal       only what serving and streaming need (serve,client extras; runtime apt packages)
#   --no-browser    skip Debian's chromium (only the browser-page tests need it)
#   --no-apt        skip system packages entirely (you installed them yourself)
#   --venv PATH     where the virtualenv lives (default: .venv in the repository; env FIRSTSPIKE_VENV)
set -euo pipefail

# --- Debian (main) packages, by what needs them. Add new ones to the matching list. -----------------
# Reading and streaming audio (soundfile, sounddevice, the demo's fallback sample, ALSA test device).
APT_RUNTIME=(libsndfile1 libportaudio2 espeak-ng sox alsa-utils)
# Building the synthetic keyword corpus (`firstspike data synth`): TTS voices and a word list.
APT_CORPUS=(flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts wamerican)
# The browser page's end-to-end test drives Debian's chromium through Playwright.
APT_BROWSER=(chromium)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${FIRSTSPIKE_VENV:-$repo/.venv}
extras=dev
use_apt=1
browser=1
minimal=0

die() { echo "setup: error: $*" >&2; exit 1; }
trap 'echo "setup: error: command failed at line $LINENO" >&2' ERR
step() { echo "==> $*"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --extras) [[ $# -ge 2 ]] || die "--extras needs a value"; extras=$2; shift 2 ;;
    --minimal) minimal=1; extras=serve,client; browser=0; shift ;;
    --no-browser) browser=0; shift ;;
    --no-apt) use_apt=0; shift ;;
    --venv) [[ $# -ge 2 ]] || die "--venv needs a value"; venv=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
[[ $extras =~ ^[a-z]+(,[a-z]+)*$ ]] || die "--extras must look like 'serve,client', got '$extras'"

# --- system packages -------------------------------------------------------------------------------
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_apt_packages() {
  local wanted=("${APT_RUNTIME[@]}")
  [[ $minimal -eq 1 ]] || wanted+=("${APT_CORPUS[@]}")
  [[ $browser -eq 0 ]] || wanted+=("${APT_BROWSER[@]}")
  # A python3 without ensurepip (Debian's, before python3-venv) cannot create the virtualenv.
  python3 -c 'import ensurepip' 2>/dev/null || wanted+=(python3-venv)

  local missing=() pkg
  for pkg in "${wanted[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    step "system packages: all ${#wanted[@]} present"
    return
  fi
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get: install them by hand, then rerun with --no-apt"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing packages (${missing[*]}): run as root, or install them and rerun with --no-apt"
    sudo=(sudo)
  fi
  step "system packages: installing ${missing[*]}"
  local log
  log=$(mktemp)
  if ! { "${sudo[@]}" apt-get update -q && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "apt-get failed (full log: $log)"
  fi
  rm -f "$log"
}

[[ $use_apt -eq 0 ]] || install_apt_packages

# --- Python virtualenv -----------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 not found (firstspike needs Python 3.10 or newer)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "python3 is $(python3 -V 2>&1); firstspike needs 3.10 or newer"

if [[ ! -x $venv/bin/python ]]; then
  step "virtualenv: creating $venv"
  python3 -m venv "$venv"
fi

# The stamp records what the last successful install covered, so a rerun with nothing new is instant.
stamp=$venv/.firstspike-setup
fingerprint=$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)
covered() {
  [[ -f $stamp ]] || return 1
  local have_fp have_extras
  read -r have_fp have_extras <"$stamp" || return 1
  [[ $have_fp == "$fingerprint" ]] || return 1
  [[ ,$have_extras, == *,dev,* ]] && return 0
  local extra
  for extra in ${extras//,/ }; do [[ ,$have_extras, == *,$extra,* ]] || return 1; done
}

if covered; then
  step "python packages: up to date (extras: $(cut -d' ' -f2 "$stamp"))"
else
  step "python packages: pip install -e '.[$extras]' (first time: a few minutes)"
  log=$(mktemp)
  # torch is pinned (==2.13.0) in the train extra, so pip takes the local CPU wheel where one exists.
  if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$repo[$extras]" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip install failed (full log: $log)"
  fi
  rm -f "$log"
  # Extras accumulate in one venv: keep those an earlier install of the same pyproject.toml covered.
  if [[ -f $stamp && $(cut -d' ' -f1 "$stamp") == "$fingerprint" ]]; then
    extras=$(cut -d' ' -f2 "$stamp"),$extras
  fi
  echo "$fingerprint $extras" >"$stamp"
fi
step "ready: $venv/bin/firstspike ($("$venv/bin/firstspike" --version))"
