#!/usr/bin/env bash
# The main job in one command: set up, start the server with the bundled default model, stream a
# keyword sample through it, print the decision and the latency report, then stop the server.
#
# Usage: bash scripts/demo.sh [--port N] [--keep-running] [--no-setup] [FILE.wav]
#   --port N         port for the server (default 8000)
#   --keep-running   leave the server running afterwards (prints how to stop it)
#   --no-setup       skip scripts/setup.sh (it already ran)
#   FILE.wav         what to stream (default: samples/yes.wav, else the first samples/*.wav, else a
#                    "yes" spoken by espeak-ng)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${FIRSTSPIKE_VENV:-$repo/.venv}
port=8000
keep=0
setup=1
sample=

die() { echo "demo: error: $*" >&2; exit 1; }
trap 'echo "demo: error: command failed at line $LINENO" >&2' ERR
step() { echo "==> $*"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --port) [[ $# -ge 2 ]] || die "--port needs a value"; port=$2; shift 2 ;;
    --keep-running) keep=1; shift ;;
    --no-setup) setup=0; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) sample=$1; shift ;;
  esac
done
[[ $port =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "--port must be a port number, got '$port'"

[[ $setup -eq 0 ]] || bash "$repo/scripts/setup.sh" --minimal
firstspike=$venv/bin/firstspike
python=$venv/bin/python
[[ -x $firstspike ]] || die "$firstspike not found: run bash scripts/setup.sh first"

workdir=$(mktemp -d)

# --- what to stream ----------------------------------------------------------------------------------
if [[ -z $sample ]]; then
  if [[ -f $repo/samples/yes.wav ]]; then
    sample=$repo/samples/yes.wav
  elif [[ -d $repo/samples ]]; then
    sample=$(find "$repo/samples" -maxdepth 1 -name '*.wav' | sort | head -n 1)
  fi
  if [[ -z $sample ]]; then
    command -v espeak-ng >/dev/null || die "no samples/*.wav and no espeak-ng to speak one"
    sample=$workdir/yes.wav
    espeak-ng -v en-us -w "$sample" "yes"
    step "no bundled sample found: streaming a 'yes' spoken by espeak-ng"
  fi
fi
[[ -f $sample ]] || die "sample '$sample' does not exist"

# --- the server --------------------------------------------------------------------------------------
port_busy() {
  "$python" - "$port" <<'EOF'
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}
port_busy && die "port $port is already in use (another server?): pick another with --port"

log=$workdir/server.log
step "starting: firstspike serve --host 127.0.0.1 --port $port (bundled default model)"
"$firstspike" serve --host 127.0.0.1 --port "$port" >"$log" 2>&1 &
server=$!

stop_server() {
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
}
cleanup() {
  local rc=$?
  if [[ $keep -eq 1 && $rc -eq 0 ]]; then
    echo "server still running: pid $server, http://127.0.0.1:$port/ (log: $log); stop it with: kill $server"
    return
  fi
  stop_server
  [[ $rc -eq 0 ]] || { echo "--- server log ($log) ---" >&2; tail -n 40 "$log" >&2; }
  [[ $rc -ne 0 ]] || rm -rf "$workdir"
}
trap cleanup EXIT

# Poll /readyz: the model loads before the server reports ready.
"$python" - "$port" "$server" <<'EOF' || die "the server did not become ready"
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("demo: the server exited during start-up")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            if reply.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("demo: /readyz did not answer 200 within 60 s")
EOF
step "server ready: http://127.0.0.1:$port/ (the browser page), ws://127.0.0.1:$port/v1/stream"

# --- stream the sample ---------------------------------------------------------------------------------
step "streaming ${sample#"$repo"/} in real time"
"$firstspike" stream "$sample" --url "ws://127.0.0.1:$port/v1/stream"

if [[ $keep -eq 0 ]]; then
  step "stopping the server"
  stop_server
  step "done"
fi
