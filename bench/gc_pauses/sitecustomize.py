"""Log every full (oldest-generation) GC collection of any Python process started with this on its path.

    PYTHONPATH=bench/gc_pauses .venv/bin/firstspike serve ...     # or firstspike bench, or both

Each process writes the durations (ms) of its full collections, in order, to
$FIRSTSPIKE_GC_REPORT_DIR/gc-full.<pid> (default /tmp) when it exits, if it had any. A full collection
stops the whole process, so each one is a stall every stream served or sent by that process sees.
"""

import atexit
import gc
import os
import time

_durations: list[float] = []
_started = [0.0]


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    elif info["generation"] == 2:
        _durations.append((time.perf_counter() - _started[0]) * 1000.0)


def _report() -> None:
    if _durations:
        folder = os.environ.get("FIRSTSPIKE_GC_REPORT_DIR", "/tmp")
        with open(os.path.join(folder, f"gc-full.{os.getpid()}"), "w") as out:
            out.write(" ".join(f"{ms:.1f}" for ms in _durations) + "\n")


gc.callbacks.append(_on_gc)
atexit.register(_report)
try:  # spawned multiprocessing children leave through os._exit, past atexit
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _report, exitpriority=-100)
except ImportError:
    pass
