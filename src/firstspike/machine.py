"""What machine a benchmark ran on: CPU model, cores and load, recorded beside every figure.

The development machines are shared VMs whose CPU changes between sessions (a Sapphire Rapids Xeon
one day, a Zen 5 EPYC another), and a step's cost moves by 1.6x with it, so a figure without its CPU
cannot be compared with another.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) ..."), or the architecture if unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> dict:
    """CPU model, usable cores and the 1-minute load average, for a benchmark's header or JSON."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"cpu": cpu_model(), "cores": cores, "load_average_1m": load}


def describe_machine(summary: dict | None = None) -> str:
    """One line, 'AMD EPYC, 2 cores, load 0.10', of `summary` (by default, this machine now)."""
    summary = summary or machine_summary()
    load = "" if summary["load_average_1m"] is None else f", load {summary['load_average_1m']:.2f}"
    return f"{summary['cpu']}, {summary['cores']} cores{load}"
