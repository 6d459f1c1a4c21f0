"""The load generator behind `firstspike bench`: many real-time streams spread over worker processes.

Slot i of N opens its first session at `ramp * i / N` seconds and, until the run ends, streams clips
back to back, each paced in real time. Workers are separate processes (spawned), so one Python event
loop is never the bottleneck; they share only a start time, a stop flag and a few live counters.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass

from firstspike.client.connection import OK, SessionOptions, SessionResult, run_session
from firstspike.client.send_clock import SendClock
from firstspike.gc_tuning import calm_the_garbage_collector

CUT = "cut"  # a session still open when the run ended

# One finished session, kept small because a long run produces tens of thousands of them.
# (end_time_s since run start, slot, outcome, failure_key, early, decision_latency_ms, audio_ms,
#  processing_ms, max_send_lag_ms, audio_ms_sent)
SessionRecord = tuple


@dataclass
class WorkerPlan:
    worker: int
    slots: list[int]  # global slot indices this worker runs
    total_slots: int
    t0_wall: float  # time.time() at which slot 0 starts
    ramp_s: float
    duration_s: float  # run length after the ramp
    chunk_ms: float
    clips: list[tuple[int, int, bytes]]  # (sample_rate, channels, pcm)
    options: dict  # SessionOptions keyword arguments
    gap_s: float = 0.0
    sample_every_s: float = 0.25


def run_worker(plan: WorkerPlan, stop_event, counters, results_queue) -> None:
    """Process entry point: run this worker's slots, then put (worker, records, timeline) on the queue."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and raises stop_event
    _raise_fd_limit()
    calm_the_garbage_collector()
    records: list[SessionRecord] = []
    timeline: list[tuple[float, int]] = []
    error = None
    parent = os.getppid()
    try:
        _event_loop_runner()(_worker_main(plan, stop_event, counters, records, timeline, parent))
    except Exception as err:  # noqa: BLE001 - reported by the parent, never swallowed silently
        error = f"{type(err).__name__}: {err}"
    if os.getppid() != parent:  # nobody is left to read the results: do not wait to hand them over
        results_queue.cancel_join_thread()
        return
    results_queue.put((plan.worker, records, timeline, error))


def _event_loop_runner():
    try:
        import uvloop  # present with the serve extra; noticeably cheaper per message than asyncio's loop

        return uvloop.run
    except ImportError:
        return asyncio.run


def _raise_fd_limit() -> None:
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


async def _worker_main(plan: WorkerPlan, stop_event, counters, records, timeline, parent: int) -> None:
    options = SessionOptions(**plan.options)
    # Translate the shared wall-clock start into this process's perf_counter.
    t0 = time.perf_counter() + (plan.t0_wall - time.time())
    end = t0 + plan.ramp_s + plan.duration_s
    base = 3 * plan.worker
    state = {"active": 0, "decisions": 0, "failures": 0}
    done = asyncio.Event()
    clock = SendClock()

    def publish() -> None:
        counters[base] = state["active"]
        counters[base + 1] = state["decisions"]
        counters[base + 2] = state["failures"]

    async def slot_loop(slot: int) -> None:
        start = t0 + plan.ramp_s * slot / plan.total_slots
        await _sleep_until(start)
        clip_index = slot % len(plan.clips)
        failures_in_a_row = 0
        while time.perf_counter() < end and not done.is_set():
            rate, channels, pcm = plan.clips[clip_index]
            clip_index = (clip_index + 1) % len(plan.clips)
            result = SessionResult(sample_rate=rate, channels=channels)
            state["active"] += 1
            try:
                await run_session(options, rate, channels, _chunked(pcm, rate, channels, plan.chunk_ms), paced=True,
                                  result=result, clock=clock)
            except asyncio.CancelledError:
                # Cut by the end of the run: keep how well it was keeping pace, not its outcome.
                records.append(_record(result, slot, t0, outcome=CUT))
                raise
            finally:
                state["active"] -= 1
            records.append(_record(result, slot, t0))
            if result.outcome == OK:
                state["decisions"] += 1
                failures_in_a_row = 0
            else:
                state["failures"] += 1
                failures_in_a_row += 1
                await asyncio.sleep(_backoff_s(result, failures_in_a_row))  # do not hammer a server that refuses us
            publish()
            if plan.gap_s:
                await asyncio.sleep(plan.gap_s)

    async def sampler() -> None:
        while not done.is_set():
            timeline.append((time.perf_counter() - t0, state["active"]))
            publish()
            # A parent killed without the chance to raise stop_event (SIGTERM, SIGKILL) leaves this
            # process to the init process: stop, rather than stream at the server for the rest of the run.
            if stop_event.is_set() or time.perf_counter() >= end or os.getppid() != parent:
                done.set()
                return
            await asyncio.sleep(plan.sample_every_s)

    tasks = [asyncio.create_task(slot_loop(slot)) for slot in plan.slots]
    sampling = asyncio.create_task(sampler())
    await done.wait()
    # Sessions still open at the end are cut: they count neither as decisions nor as failures.
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await sampling
    state["active"] = 0
    publish()


# A slot refused again and again waits at most this many times its first wait.
MAX_BACKOFF_FACTOR = 8


def _backoff_s(result: SessionResult, failures_in_a_row: int) -> float:
    """How long a slot waits after a failed session, as a well-behaved client would.

    What the server asked for (Retry-After), at least half a second, doubled with each failure in a
    row up to MAX_BACKOFF_FACTOR times, and spread over up to half as long again so that refused slots
    do not all come back at once. A server past its capacity refuses hundreds of streams a second;
    retrying every half second took the generator from 44 to 69–73 % of a core on the 2-core VM, CPU the
    server's streams needed (docs/benchmarks.md, *Server: admission by load*)."""
    factor = min(MAX_BACKOFF_FACTOR, 2 ** (failures_in_a_row - 1))
    return max(0.5, result.retry_after_s or 0.0) * factor * random.uniform(1.0, 1.5)


async def _sleep_until(when: float) -> None:
    delay = when - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


def _chunked(pcm: bytes, rate: int, channels: int, chunk_ms: float) -> list[bytes]:
    step = max(1, round(rate * chunk_ms / 1000.0)) * 2 * channels
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def _record(res: SessionResult, slot: int, t0: float, outcome: str | None = None) -> SessionRecord:
    decision = res.decision or {}
    latency = res.decision_latency_ms
    return (
        round((res.decision_at or res.closed_at or time.perf_counter()) - t0, 4),
        slot,
        outcome or res.outcome,
        res.failure_key or "",
        bool(decision.get("early")),
        None if latency is None else round(latency, 3),
        decision.get("audio_ms"),
        decision.get("processing_ms"),
        round(res.max_lag_ms, 3),
        round(res.audio_ms_sent, 1),
    )


def plan_workers(
    streams: int, procs: int, t0_wall: float, ramp_s: float, duration_s: float, chunk_ms: float,
    clips: list[tuple[int, int, bytes]], options: SessionOptions, gap_s: float = 0.0,
) -> list[WorkerPlan]:
    """Deal slots round-robin so every worker ramps up at the same pace."""
    option_kwargs = {
        "url": options.url, "token": options.token, "model": options.model, "threshold": options.threshold,
        "partials": False, "ping": False, "open_timeout": options.open_timeout,
        "decision_timeout": options.decision_timeout,
    }
    return [
        WorkerPlan(
            worker=w, slots=list(range(w, streams, procs)), total_slots=streams, t0_wall=t0_wall,
            ramp_s=ramp_s, duration_s=duration_s, chunk_ms=chunk_ms, clips=clips, options=option_kwargs, gap_s=gap_s,
        )
        for w in range(procs)
        if w < streams
    ]


def default_procs(streams: int) -> int:
    """About 300 real-time streams per generator process, at most one per core."""
    return max(1, min(os.cpu_count() or 1, -(-streams // 300)))
