"""What sharing the GIL with a busy event loop costs the model thread's onnxruntime calls.

In the server the model thread calls onnxruntime while the event loop thread runs Python. onnxruntime
releases the GIL while it computes, but each call must take it back to return its outputs, and the
loop holds it up to one switch interval (0.1 ms, set by the server) before it lets go. At 1000
streams the server's model calls took 1.5-1.9x the isolated step's time per stream
(docs/benchmarks.md, *Issue 4 session by session*). This measures the same calls in one process,
alone and beside a thread that only runs Python, at several switch intervals, so the cost can be
read without a server or a load generator.

    .venv/bin/python bench/step_beside_gil.py --batch 140 --switch-us 20 100 5000
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np

from firstspike.server.models import load_models


def _spin(stop: threading.Event) -> None:
    """Pure Python, so this thread holds the GIL whenever it runs (like a busy event loop)."""
    count = 0
    while not stop.is_set():
        for _ in range(1000):
            count += 1


def _measure(model, batch: int, calls: int) -> tuple[float, float]:
    """(wall, thread CPU) µs per stream per call, on the calling thread."""
    info = model.info
    audio = (np.random.default_rng(0).standard_normal((batch, info.samples_per_call)) * 0.1).astype(np.float32)
    state = np.zeros((batch, info.state_size), np.float32)
    for _ in range(50):
        model.run(audio, state)
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        model.run(audio, state)
    per = 1e6 / (calls * batch)
    return (time.perf_counter() - wall) * per, (time.thread_time() - cpu) * per


def _measure_on_thread(model, batch: int, calls: int, beside_python: bool) -> tuple[float, float]:
    """As in the server: the calls come from a worker thread, optionally beside a GIL-holding one."""
    stop, result = threading.Event(), []
    spinner = threading.Thread(target=_spin, args=(stop,), daemon=True) if beside_python else None
    worker = threading.Thread(target=lambda: result.append(_measure(model, batch, calls)))
    if spinner:
        spinner.start()
    worker.start()
    worker.join()
    stop.set()
    if spinner:
        spinner.join()
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="step model (default: the bundled float32 model)")
    parser.add_argument("--batch", type=int, default=140, help="streams per call (140: a 1000-stream tick's rows)")
    parser.add_argument("--calls", type=int, default=400, help="timed calls per cell")
    parser.add_argument("--switch-us", type=float, nargs="+", default=[20, 50, 100, 200, 5000],
                        help="GIL switch intervals to try, µs (CPython's default is 5000; the server sets 100)")
    args = parser.parse_args()
    model = next(iter(load_models([args.model] if args.model else [], None).values()))
    print(f"{model.name}, batch {args.batch}, {args.calls} calls a cell; µs per stream per call\n")
    print("| switch interval | alone: wall / CPU | beside a Python thread: wall / CPU | wall ratio |")
    print("|---:|---|---|---:|")
    for switch_us in args.switch_us:
        sys.setswitchinterval(switch_us / 1e6)
        alone = _measure_on_thread(model, args.batch, args.calls, beside_python=False)
        beside = _measure_on_thread(model, args.batch, args.calls, beside_python=True)
        print(f"| {switch_us:g} µs | {alone[0]:.2f} / {alone[1]:.2f} | {beside[0]:.2f} / {beside[1]:.2f} "
              f"| {beside[0] / alone[0]:.2f}× |")


if __name__ == "__main__":
    main()
