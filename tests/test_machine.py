"""`firstspike.machine`: the CPU and load recorded beside every benchmark figure."""

from __future__ import annotations

import os

from firstspike.machine import cpu_model, describe_machine, machine_summary, vector_extension


def test_the_summary_names_this_machine():
    summary = machine_summary()
    assert summary["cpu"] == cpu_model() and summary["cpu"].strip()
    assert 1 <= summary["cores"] <= (os.cpu_count() or 1)
    assert summary["load_average_1m"] is None or summary["load_average_1m"] >= 0
    line = describe_machine()
    assert line.startswith(summary["cpu"]) and f"{summary['cores']} cores" in line
    recorded = {"cpu": "Some CPU", "cores": 8, "load_average_1m": None}  # as a bench JSON from elsewhere has it
    assert describe_machine(recorded) == "Some CPU, 8 cores"


def test_the_cpu_details_tell_apart_machines_of_one_name():
    """Every EPYC is "AMD EPYC": family, model and the widest vector extension are what differ."""
    assert vector_extension("fpu sse2 avx avx2 fma") == "AVX2"
    assert vector_extension("avx2 avx512f avx512bw avx512_vnni") == "AVX-512 VNNI"
    assert vector_extension("avx2 avx512f") == "AVX-512"
    assert vector_extension("fp asimd") == "NEON"
    assert vector_extension("") is None
    recorded = {"cpu": "AMD EPYC", "cpu_family_model": "family 25 model 1", "vector_extension": "AVX2",
                "cores": 2, "load_average_1m": 0.5}
    assert describe_machine(recorded) == "AMD EPYC (family 25 model 1, AVX2), 2 cores, load 0.50"
    here = machine_summary()
    if here["vector_extension"]:
        assert here["vector_extension"] in describe_machine(here)
