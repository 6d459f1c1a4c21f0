"""`bench/sched_trace.py`: a real trace of a real busy process, lined up with a bench summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bench import sched_trace

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SPIN = "import time\nend = time.time() + 5\nwhile time.time() < end: pass\n"


def test_record_and_report_show_a_spinning_server_on_a_core(tmp_path):
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        began = time.time()
        polls = sched_trace.record(spinner.pid, str(tmp_path / "trace.jsonl"), seconds=1.2)
    finally:
        spinner.kill()
        spinner.wait()
    assert polls >= 20  # every 20 ms, less the time the polls themselves take
    run = {"started_at_unix": began, "streams": 1, "streams_held": 0, "wall_s": 1.2,
           "fell_behind": [{"t": 1.0, "sessions": 1, "failed": 0, "worst_ms": 150.0}]}
    (tmp_path / "run.json").write_text(json.dumps(run))

    text = sched_trace.report(str(tmp_path / "trace.jsonl"), str(tmp_path / "run.json"))

    assert "fell behind at 1 s: 1 sessions, worst 150.0 ms" in text
    header = next(line for line in text.splitlines() if "host busy" in line)
    assert "server main" in header
    rows = [line for line in text.splitlines() if line[:7].strip().replace(".", "").isdigit()]
    assert len(rows) >= 5  # 100 ms windows over the second before the mark
    # The spinner never sleeps: it is on a core (or queued for one) for nearly all of every window.
    on_plus_waiting = [sum(float(x) for x in row.split("│")[1].split("/")) for row in rows]
    assert min(on_plus_waiting) > 80


def test_the_cli_refuses_a_missing_server(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sched_trace.main(["record", "--server-pid", "999999999", "--out", str(tmp_path / "t.jsonl")])
    assert "no process 999999999" in capsys.readouterr().err
