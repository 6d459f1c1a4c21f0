"""Log every GC collection of any Python process started with this on its path.

    PYTHONPATH=bench/gc_pauses .venv/bin/firstspike serve ...     # or firstspike bench, or both

A collection holds the GIL while it runs, so each one is a stall every stream served or sent by that
process sees. When the process exits, it writes to $FIRSTSPIKE_GC_REPORT_DIR (default /tmp):
- gc-full.<pid>: the durations (ms) of its full (oldest-generation) collections, in order, if any;
- gc-stats.<pid>: one line per generation that was collected: how many collections, their wall time
  (mean, p99, max, total, in ms) and the objects they freed; and the slowest ten collections of the
  whole run with their time since start-up (s), generation, wall ms and objects freed.
Collections started with `gc.collect()` count too (`firstspike/gc_tuning.py` makes all of them that
way).
"""

import atexit
import gc
import os
import time

_began = time.perf_counter()
_collections: list[tuple[float, int, float, int]] = []  # (seconds since start, generation, ms, freed)
_started = [0.0]


def _on_gc(phase: str, info: dict) -> None:
    now = time.perf_counter()
    if phase == "start":
        _started[0] = now
    else:
        _collections.append((now - _began, info["generation"], (now - _started[0]) * 1000.0, info["collected"]))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report() -> None:
    if not _collections:
        return
    folder = os.environ.get("FIRSTSPIKE_GC_REPORT_DIR", "/tmp")
    pid = os.getpid()
    full = [ms for _, generation, ms, _ in _collections if generation == 2]
    if full:
        with open(os.path.join(folder, f"gc-full.{pid}"), "w") as out:
            out.write(" ".join(f"{ms:.1f}" for ms in full) + "\n")
    with open(os.path.join(folder, f"gc-stats.{pid}"), "w") as out:
        for generation in (0, 1, 2):
            walls = [ms for _, g, ms, _ in _collections if g == generation]
            if walls:
                freed = sum(n for _, g, _, n in _collections if g == generation)
                out.write(f"gen{generation}: n={len(walls)} mean={sum(walls) / len(walls):.2f} "
                          f"p99={_percentile(walls, 0.99):.2f} max={max(walls):.2f} total={sum(walls):.0f} ms, "
                          f"freed {freed}\n")
        slowest = sorted(_collections, key=lambda c: c[2], reverse=True)[:10]
        out.write("slowest: " + ", ".join(f"{t:.1f}s gen{g} {ms:.1f}ms freed {n}" for t, g, ms, n in slowest) + "\n")


gc.callbacks.append(_on_gc)
atexit.register(_report)
try:  # spawned multiprocessing children leave through os._exit, past atexit
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _report, exitpriority=-100)
except ImportError:
    pass
