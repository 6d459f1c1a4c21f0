"""What a lone stream's first model call costs after 100 ms of idleness, against calls back to back.

A lone real-time stream sends a 100 ms chunk, the server steps its ten hops, and then sits idle until
the next chunk. On a VM the first call after such a pause runs on a cold core and cold caches, so a
lone stream's ten calls cost far more than ten steps of `bench/step_latency.py`. This measures that
directly, for the step model and, as a yardstick, for a numpy product of the LSTM's size. It is why
the server runs a tick of a few streams on the loop thread (server/engine.py, INLINE_MAX_ROWS).

    .venv/bin/python bench/idle_first_call.py [--model src/firstspike/server/models/default.onnx]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from firstspike.server.models import load_models


def first_and_second_after_idle(run: Callable[[], object], idle_s: float, repeats: int) -> tuple[float, float]:
    """Median µs of the first and of the second call after each `idle_s` of sleep."""
    for _ in range(100):
        run()
    first, second = [], []
    for _ in range(repeats):
        time.sleep(idle_s)
        t0 = time.perf_counter()
        run()
        t1 = time.perf_counter()
        run()
        t2 = time.perf_counter()
        first.append(t1 - t0)
        second.append(t2 - t1)
    return 1e6 * statistics.median(first), 1e6 * statistics.median(second)


def back_to_back(run: Callable[[], object], calls: int) -> float:
    for _ in range(100):
        run()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled", help="a model spec as `firstspike serve --model` takes")
    parser.add_argument("--idle-ms", type=float, default=100.0, help="the pause before each measured call")
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()

    model = next(iter(load_models([args.model], None).values()))
    info = model.info
    audio = (np.random.default_rng(0).standard_normal((1, info.samples_per_call)) * 0.1).astype(np.float32)
    state = np.zeros((1, info.state_size), np.float32)
    weights = np.random.default_rng(1).random((168, 512), np.float32)
    x = np.random.default_rng(2).random((1, 168), np.float32)
    cases = {
        f"{model.full_name} step, batch 1": lambda: model.run(audio, state),
        "numpy [1, 168] @ [168, 512]": lambda: x @ weights,
    }

    print(f"| call | back to back, µs | first after {args.idle_ms:g} ms idle, µs | second after it, µs |")
    print("|---|---:|---:|---:|")
    for name, run in cases.items():
        hot = back_to_back(run, 1000)
        first, second = first_and_second_after_idle(run, args.idle_ms / 1000.0, args.repeats)
        print(f"| {name} | {hot:.1f} | {first:.1f} | {second:.1f} |")


if __name__ == "__main__":
    main()
