"""CPU the end-of-speech detector adds per audio message, for sessions that ask for `endpoint_ms`.

The server runs `firstspike.endpointing.Endpointer` on the event loop for every binary message of such a
session. This times it on 100 ms messages of quiet room noise (the common case: the detector runs until
the speech is over) and prints the median over repeats, in µs per message.

    .venv/bin/python bench/endpointer_cost.py [--chunk-ms 100] [--messages 200] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from firstspike.endpointing import Endpointer

RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-ms", type=float, default=100.0)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    size = round(RATE * args.chunk_ms / 1000)
    messages = [(rng.standard_normal(size) * 1e-3).astype(np.float32) for _ in range(args.messages)]  # -60 dBFS
    per_message = []
    for _ in range(args.repeats):
        detector = Endpointer(RATE, quiet_ms=500)
        started = time.perf_counter()
        for message in messages:
            detector.push(message)
        per_message.append((time.perf_counter() - started) / len(messages) * 1e6)
    print(f"end-of-speech detector: {statistics.median(per_message):.1f} µs per {args.chunk_ms:g} ms message "
          f"(median of {args.repeats} runs of {args.messages} messages; min {min(per_message):.1f})")


if __name__ == "__main__":
    main()
