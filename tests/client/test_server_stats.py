"""The bench's psutil sampler on real processes: a server's worker that exits must not make CPU run backwards."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from firstspike.client.server_stats import process_sampler

# A parent that starts a child, which burns about 0.4 s of CPU and exits while the parent lives on.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"])
child.wait()
time.sleep(30)
"""


def test_cpu_of_an_exited_child_is_kept():
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert psutil.Process(parent.pid).children(), "the child never started"
        sampler = process_sampler(parent.pid, time.perf_counter(), every_s=0.05).start()
        while psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # a few samples after the child is gone
        stats = sampler.stop()
    finally:
        parent.kill()
        parent.wait()

    assert stats.error is None
    cpu = [s.cpu_seconds for s in stats.samples]
    assert len(cpu) >= 5
    assert all(b >= a for a, b in zip(cpu, cpu[1:])), f"CPU seconds ran backwards: {cpu}"
    assert cpu[-1] - cpu[0] >= 0.2  # the child's burn is counted, although it has exited
    assert all(row["cpu_percent"] >= 0 for row in stats.timeline())
