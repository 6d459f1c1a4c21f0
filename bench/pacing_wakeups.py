"""CPU cost of pacing streams with one sleep per chunk: what the generator's send clock saves.

N tasks each sleep until their next 100 ms chunk is due, and send nothing. The process's CPU time over
the measured window, divided by the wake-ups, is the timer-plus-task-switch cost that every chunk used
to pay in `firstspike bench` before `client/send_clock.py` (one 5 ms timer per process) replaced it.

    .venv/bin/python bench/pacing_wakeups.py --tasks 1000 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time


async def _paced(offset_s: float, period_s: float) -> None:
    t0 = time.perf_counter() + offset_s
    k = 0
    while True:
        k += 1
        delay = t0 + k * period_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(tasks: int, seconds: float, period_s: float) -> None:
    running = [asyncio.create_task(_paced(i * period_s / tasks, period_s)) for i in range(tasks)]
    await asyncio.sleep(1.0)  # settle
    before = _cpu_seconds()
    await asyncio.sleep(seconds)
    used = _cpu_seconds() - before
    wakeups = tasks * seconds / period_s
    print(f"{tasks} paced tasks, one wake-up each {period_s * 1000:g} ms: "
          f"{used / wakeups * 1e6:.1f} µs CPU per wake-up, {used / seconds * 100:.1f} % of a core")
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--period-ms", type=float, default=100.0)
    args = parser.parse_args()
    try:
        import uvloop  # what the generator runs on when the serve extra is installed

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    run(_measure(args.tasks, args.seconds, args.period_ms / 1000.0))


if __name__ == "__main__":
    main()
