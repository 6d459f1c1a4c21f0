"""The benchmark scripts that docs/benchmarks.md quotes still run (tiny sizes: a smoke test, not a measurement)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, args, expect", [
    ("pacing_wakeups.py", ["--tasks", "20", "--seconds", "0.3"], "µs CPU per wake-up"),
    ("engine_overhead.py", ["--batch", "2", "--repeats", "2"], "through the engine"),
    ("server_cpu_per_message.py", ["--streams", "2", "--chunks", "5", "--gap-ms", "10"], "CPU per message"),
    ("server_cpu_per_message.py", ["--streams", "2", "--chunks", "1", "--gap-ms", "0", "--sessions", "3"],
     "6 messages of 100 ms in 6 sessions"),
    ("idle_first_call.py", ["--idle-ms", "1", "--repeats", "3"], "first after 1 ms idle"),
    ("endpointer_cost.py", ["--messages", "20", "--repeats", "2"], "end-of-speech detector:"),
    ("step_latency.py", ["--steps", "50", "--warmup", "5", "--batches", "2", "--variants", "fused", "--quantize"],
     "onnxruntime fused, int8 all"),
    ("step_latency.py", ["--steps", "50", "--warmup", "5", "--batches", "2", "--variants", "multi-hop",
                         "--hops-per-call", "1", "3"], "onnxruntime multi-hop, 3 hop(s) per call"),
    ("classify_latency.py", ["src/firstspike/server/models/default.onnx", "--repeats", "1"], "yes @ frame 43"),
    ("op_profile.py", ["src/firstspike/server/models/default-int8.onnx", "--batch", "2", "--calls", "3", "--warmup", "1"],
     "MatMulIntegerToFloat"),
])
def test_bench_script_runs(script, args, expect):
    result = subprocess.run([sys.executable, str(REPO / "bench" / script), *args],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert expect in result.stdout


def test_rc_frame_bound_reads_a_real_corpus(tmp_path):
    """Fillers count whole, keywords only up to their word: the bound lies between the keyword share and 1."""
    firstspike = str(Path(sys.executable).with_name("firstspike"))
    subprocess.run([firstspike, "data", "synth", "--out", str(tmp_path / "tiny"), "--preset", "tiny"],
                   check=True, capture_output=True, timeout=300)
    result = subprocess.run([sys.executable, str(REPO / "bench" / "rc_frame_bound.py"), str(tmp_path / "tiny")],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    at_onset, at_end = (float(cell.strip(" *")) for cell in last.split("|")[3:5])
    assert 0 < at_onset < at_end < 1
    missing = subprocess.run([sys.executable, str(REPO / "bench" / "rc_frame_bound.py"), str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert missing.returncode == 2 and "rc_frame_bound:" in missing.stderr
