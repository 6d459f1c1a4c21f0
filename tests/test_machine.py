"""`firstspike.machine`: the CPU and load recorded beside every benchmark figure."""

from __future__ import annotations

import os

from firstspike.machine import cpu_model, describe_machine, machine_summary


def test_the_summary_names_this_machine():
    summary = machine_summary()
    assert summary["cpu"] == cpu_model() and summary["cpu"].strip()
    assert 1 <= summary["cores"] <= (os.cpu_count() or 1)
    assert summary["load_average_1m"] is None or summary["load_average_1m"] >= 0
    line = describe_machine()
    assert line.startswith(summary["cpu"]) and f"{summary['cores']} cores" in line
    recorded = {"cpu": "Some CPU", "cores": 8, "load_average_1m": None}  # as a bench JSON from elsewhere has it
    assert describe_machine(recorded) == "Some CPU, 8 cores"
