"""The server engine's own Python cost per frame, next to the bare onnxruntime calls it makes.

One tick of B streams × 10 rounds (the shape of 100 ms chunks at one tick per 10 ms) goes through
`BatchEngine._compute` (state bookkeeping, θ test, metrics) and, alternately, through the same 10
model calls alone. The difference is what the engine adds per 10 ms frame; the rest is onnxruntime.

    .venv/bin/python bench/engine_overhead.py --batch 30 60
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from firstspike.server.engine import ROUNDS_PER_TICK, BatchEngine
from firstspike.server.tick_compute import Tick
from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import load_models
from firstspike.server.settings import ServerSettings


def _measure(model, batch: int, repeats: int) -> tuple[float, float]:
    info, rounds = model.info, ROUNDS_PER_TICK
    engine = BatchEngine(model, batch, max_batch=batch, max_wait_ms=10, buffer_seconds=2, metrics=ServerMetrics())
    audio = (np.random.default_rng(0).standard_normal((rounds, batch, info.samples_per_call)) * 0.01).astype(np.float32)
    zeros = np.zeros((batch, info.state_size), np.float32)

    def tick() -> Tick:
        return Tick(rows=np.arange(batch), generations=np.zeros(batch, np.int64), calls=np.full(batch, rounds),
                    audio=audio, state=zeros.copy(), threshold=np.ones(batch, np.float32),
                    frames=np.zeros(batch, np.int64), partial_every=np.zeros(batch, np.int64),
                    next_partial=np.zeros(batch, np.int64))

    def bare() -> None:
        state = zeros
        for r in range(rounds):
            _, state = model.run(audio[r], state)

    def engine_tick() -> None:
        engine._compute(tick())

    timings: dict[str, list[float]] = {"bare": [], "engine": []}
    for _ in range(20):
        bare(), engine_tick()
    for _ in range(7):  # alternate blocks, so load from elsewhere hits both alike
        for name, call in (("bare", bare), ("engine", engine_tick)):
            began = time.perf_counter()
            for _ in range(repeats):
                call()
            timings[name].append((time.perf_counter() - began) / repeats / (rounds * batch) * 1e6)
    return statistics.median(timings["bare"]), statistics.median(timings["engine"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--repeats", type=int, default=100, help="ticks per timed block")
    args = parser.parse_args()
    settings = ServerSettings()
    model = next(iter(load_models(settings.models, settings.threshold, settings.intra_op_threads).values()))
    for batch in args.batch:
        bare, engine = _measure(model, batch, args.repeats)
        print(f"batch {batch:4d}: onnxruntime alone {bare:.2f} µs per frame, through the engine {engine:.2f} µs "
              f"(+{engine - bare:.2f})")


if __name__ == "__main__":
    main()
