"""What machine a benchmark ran on: CPU model, vector instructions, cores and load, recorded beside every figure.

The development machines are shared VMs whose CPU changes between sessions (a Sapphire Rapids Xeon
one day, a Zen 4 EPYC another, an AVX2-only Zen 3 the next), and a step's cost moves by 1.6x with
it, so a figure without its CPU cannot be compared with another. Every EPYC calls itself "AMD EPYC",
so the family and model numbers and the widest vector extension (int8 arithmetic needs VNNI to be
fast, and rounds differently without it) are recorded too.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model(info: dict[str, str] | None = None) -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) ..."), or the architecture if unknown."""
    info = _cpuinfo_fields() if info is None else info
    return info.get("model name") or platform.processor() or platform.machine()


# The widest extension first: what decides how fast (and, for int8 without VNNI, how) a step computes.
VECTOR_EXTENSIONS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX-512 VNNI"), ("avx512f", "AVX-512"),
                     ("avx_vnni", "AVX-VNNI"), ("avx2", "AVX2"), ("asimd", "NEON"))


def vector_extension(flags: str) -> str | None:
    """The widest extension of VECTOR_EXTENSIONS among the CPU's `flags` (space-separated), if any."""
    present = set(flags.split())
    return next((name for flag, name in VECTOR_EXTENSIONS if flag in present), None)


def machine_summary() -> dict:
    """CPU model (family and model numbers, widest vector extension), usable cores and the 1-minute
    load average, for a benchmark's header or JSON."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    info = _cpuinfo_fields()
    family_model = (f"family {info['cpu family']} model {info['model']}"
                    if "cpu family" in info and "model" in info else None)
    vector = vector_extension(info.get("flags", info.get("Features", "")))
    return {"cpu": cpu_model(info), "cpu_family_model": family_model, "vector_extension": vector,
            "cores": cores, "load_average_1m": load}


def describe_machine(summary: dict | None = None) -> str:
    """One line, 'AMD EPYC (family 25 model 1, AVX2), 2 cores, load 0.10', of `summary` (by default,
    this machine now; a summary recorded before the CPU details were kept has no brackets)."""
    summary = summary or machine_summary()
    details = [d for d in (summary.get("cpu_family_model"), summary.get("vector_extension")) if d]
    cpu = summary["cpu"] + (f" ({', '.join(details)})" if details else "")
    load = "" if summary["load_average_1m"] is None else f", load {summary['load_average_1m']:.2f}"
    return f"{cpu}, {summary['cores']} cores{load}"
