"""The batching scheduler: each tick gathers every stream with audio waiting into batched model calls.

Per-stream data lives in preallocated arrays indexed by slot (audio buffer, state vector, last
probabilities, frame count, θ), so a tick is a handful of numpy operations over the whole batch
whatever the number of streams. A tick copies out each ready stream's pending calls (up to
ROUNDS_PER_TICK) and hands them to a worker thread, which runs them as rounds: round r is one
batched call over every stream that has an r-th call and has not yet crossed θ. Those streams are
kept as a leading run of the tick's rows, so a round passes the model plain slices (no per-round
gathers or scatters) and tests θ with one vectorised max. onnxruntime releases the GIL, so the
event loop keeps reading sockets meanwhile, and whatever arrives joins the next tick. A tick of a
few streams (INLINE_MAX_ROWS) runs on the loop thread instead: it is short, and the hand-offs
would cost more than it holds the loop. Each stream's state row goes in and comes back untouched
by its neighbours, so batching cannot change a stream's results. With `step_in="process"` the
worker is a model process of its own instead (server/model_process.py), out of the loop's GIL.

A model whose graph takes any number of hops per call (`variable_hops`) runs a tick as segments
instead of rounds: one call over every hop that all of the live rows have, so 100 ms chunks cost one
call a tick instead of ten. Its per-hop probabilities find each row's first crossing at the exact hop.
The calls themselves, rounds or segments, are server/tick_compute.py.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided

from firstspike.server.load_meter import LoadMeter
from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import LoadedModel
from firstspike.server.model_process import ModelProcess, TickShape
from firstspike.server.tick_compute import Outcome, Tick, TickStepper

log = logging.getLogger("firstspike.server.engine")

# Model calls per stream per tick: a tick takes up to 100 ms of a stream's audio (10 ms hops), so
# one slow client with a huge chunk cannot hold everyone else's tick for long.
ROUNDS_PER_TICK = 10

# A tick of at most this many streams runs on the loop thread itself. Handing it to the worker and
# back costs two thread wake-ups and a cold core: a lone stream's chunk took the server 1.2-1.4 ms
# that way and 0.4-0.5 ms on the loop (docs/benchmarks.md, "a lone stream's tick on the loop";
# bench/idle_first_call.py). A tick this small holds the loop for under a millisecond; every bigger
# one leaves it free to read sockets while the model runs. 16 saved 9-13 % of the server's CPU at
# 100 streams and nothing from 200 up, for about 1 ms of model calls per tick on the loop (same section).
INLINE_MAX_ROWS = 4


class SlotListener(Protocol):
    def on_decision(self, frames: int, label_index: int, score: float) -> None: ...
    def on_scores(self, frames: int, probs: np.ndarray) -> None: ...
    def on_drained(self) -> None: ...
    def on_room(self) -> None: ...
    def on_model_error(self, message: str) -> None: ...


class EngineFull(RuntimeError):
    """Every slot is taken."""


class BatchEngine:
    """All streams of one model, stepped together."""

    def __init__(
        self,
        model: LoadedModel,
        capacity: int,
        *,
        max_batch: int,
        max_wait_ms: float,
        buffer_seconds: float,
        metrics: ServerMetrics,
        step_in: Literal["thread", "process"] = "thread",
        intra_op_threads: int = 1,
    ):
        info = model.info
        self.model = model
        self.capacity = capacity
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.spc = info.samples_per_call
        self.hops_per_call = info.hops_per_call
        self.buffer_len = max(int(buffer_seconds * info.sample_rate), 2 * self.spc)

        # Slot arrays. np.zeros maps untouched pages lazily, so idle capacity costs address space only.
        # The flat buffer runs one tick's worth of samples past the last slot, so every slot's window
        # of ROUNDS_PER_TICK calls is in bounds (what lies past a row's pending audio is never used).
        tick_span = ROUNDS_PER_TICK * self.spc
        self._flat = np.zeros(capacity * self.buffer_len + tick_span, np.float32)
        self._buf = self._flat[: capacity * self.buffer_len].reshape(capacity, self.buffer_len)
        self._windows = as_strided(self._flat, shape=(capacity * self.buffer_len, tick_span),
                                   strides=(self._flat.itemsize,) * 2, writeable=False)
        self._head = np.zeros(capacity, np.intp)
        self._tail = np.zeros(capacity, np.intp)
        self._state = np.zeros((capacity, info.state_size), np.float32)
        self._probs = np.zeros((capacity, len(info.labels)), np.float32)
        self._frames = np.zeros(capacity, np.int64)
        self._threshold = np.ones(capacity, np.float32)
        self._partial_every = np.zeros(capacity, np.int64)
        self._next_partial = np.zeros(capacity, np.int64)
        self._active = np.zeros(capacity, bool)  # attached and still undecided
        self._flushing = np.zeros(capacity, bool)
        self._waiting = np.zeros(capacity, bool)
        self._inflight = np.zeros(capacity, bool)  # its audio is in the tick the worker is computing
        self._generation = np.zeros(capacity, np.int64)
        self._listeners: list[SlotListener | None] = [None] * capacity
        self._free = list(range(capacity))  # a min-heap: low slots first keeps the live range compact
        self._high = 0  # one past the highest slot ever used

        self._wake = asyncio.Event()
        self._stepper = TickStepper(model)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"step-{model.name}")
        self._process: ModelProcess | None = None
        if step_in == "process":
            shape = TickShape(rows=min(max_batch, capacity), rounds=ROUNDS_PER_TICK, samples_per_call=self.spc,
                              state_size=info.state_size, labels=len(info.labels))
            self._process = ModelProcess(model, shape, intra_op_threads)
        self._task: asyncio.Task | None = None
        self._rotate = 0
        self.attached = 0
        self.load = LoadMeter()  # the share of recent time spent in ticks: the server's headroom

        name = model.name
        self._m_batch = metrics.batch_size.labels(model=name)
        self._m_step = metrics.step_seconds.labels(model=name)
        self._m_tick = metrics.tick_seconds.labels(model=name)
        self._m_frames = metrics.frames.labels(model=name)
        self._m_audio = metrics.audio_seconds.labels(model=name)
        self._seconds_per_call = self.spc / info.sample_rate

    # -- slots -------------------------------------------------------------------------------
    def attach(self, listener: SlotListener, threshold: float, partial_every_frames: int) -> int:
        if not self._free:
            raise EngineFull(f"all {self.capacity} stream slots of model {self.model.name!r} are taken")
        slot = heapq.heappop(self._free)
        self._high = max(self._high, slot + 1)
        self._head[slot] = self._tail[slot] = 0
        self._state[slot] = 0.0
        self._probs[slot] = 0.0
        self._frames[slot] = 0
        self._threshold[slot] = threshold
        self._partial_every[slot] = partial_every_frames
        self._next_partial[slot] = partial_every_frames
        self._flushing[slot] = self._waiting[slot] = self._inflight[slot] = False
        self._active[slot] = True
        self._generation[slot] += 1
        self._listeners[slot] = listener
        self.attached += 1
        return slot

    def detach(self, slot: int) -> None:
        if self._listeners[slot] is None:
            return
        self._active[slot] = False
        self._listeners[slot] = None
        self._generation[slot] += 1
        heapq.heappush(self._free, slot)
        self.attached -= 1

    def write(self, slot: int, samples: np.ndarray) -> int:
        """Append model-rate samples to a slot's buffer; returns how many fit (the rest must wait)."""
        head, tail = int(self._head[slot]), int(self._tail[slot])
        n = len(samples)
        if tail + n > self.buffer_len and head > 0:
            pending = tail - head
            self._buf[slot, :pending] = self._buf[slot, head:tail]
            head, tail = 0, pending
            self._head[slot] = 0
        fit = min(n, self.buffer_len - tail)
        if fit:
            self._buf[slot, tail : tail + fit] = samples[:fit]
            self._tail[slot] = tail + fit
            if tail + fit - head >= self.spc and self._active[slot]:
                self._wake.set()
        return fit

    def request_room(self, slot: int) -> None:
        self._waiting[slot] = True

    def flush(self, slot: int) -> None:
        """No more audio will come: report `on_drained` once the pending whole calls are stepped."""
        self._flushing[slot] = True
        idle = self._tail[slot] - self._head[slot] < self.spc and not self._inflight[slot]
        if idle and self._active[slot]:
            listener = self._listeners[slot]
            asyncio.get_running_loop().call_soon(self._drained_if_current, slot, int(self._generation[slot]), listener)

    def _drained_if_current(self, slot: int, generation: int, listener: SlotListener) -> None:
        if self._generation[slot] == generation and self._active[slot]:
            listener.on_drained()

    def frames_of(self, slot: int) -> int:
        return int(self._frames[slot])

    def last_probs_of(self, slot: int) -> np.ndarray:
        return self._probs[slot].copy()

    # -- the scheduler -----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            if self._process is not None:
                self._process.start()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"engine-{self.model.name}")
            self._task.add_done_callback(self._log_unexpected_exit)

    def _log_unexpected_exit(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("model %s: the scheduler stopped; its streams get no more audio stepped",
                         self.model.name, exc_info=task.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)
        if self._process is not None:
            self._process.close()

    async def wait_ready(self) -> None:
        """Return once the engine can step: at once in-process, when its model process has opened the model otherwise."""
        if self._process is not None:
            await self._process.wait_ready()

    def _ready_rows(self) -> np.ndarray:
        hi = self._high
        ready = np.flatnonzero(self._active[:hi] & (self._tail[:hi] - self._head[:hi] >= self.spc))
        if len(ready) > self.max_batch:
            self._rotate = (self._rotate + self.max_batch) % len(ready)
            ready = np.roll(ready, -self._rotate)[: self.max_batch]
        return ready

    @property
    def running(self) -> bool:
        """Is the scheduler task alive? (/readyz reports a model whose scheduler has stopped.)"""
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        """Tick forever. Nothing a tick does may end this task: a dead scheduler would leave every
        stream of the model waiting for audio that is never stepped."""
        loop = asyncio.get_running_loop()
        last_tick = -float("inf")
        while True:
            rows = self._ready_rows()
            if len(rows) == 0:
                self._wake.clear()
                await self._wake.wait()
                continue
            # Ticks start at most every max_wait: under load, streams whose chunks arrive in that
            # window share each model call (every call and tick has a fixed cost, so a stream of
            # tiny ticks burns the CPU that more streams need). A tick after a quiet spell, or for
            # a lone stream, starts at once. After the pause, look again: more streams may be
            # ready, and the ones that were may have ended.
            wait = last_tick + self.max_wait - loop.time()
            if wait > 0 and self.attached > 1:
                await asyncio.sleep(wait)
                continue
            last_tick = loop.time()
            began = time.perf_counter()  # not loop.time(): uvloop's clock counts whole milliseconds
            await self._tick(loop, rows)
            ended = time.perf_counter()
            self._m_tick.observe(ended - began)
            self.load.add_busy(began, ended)

    async def _tick(self, loop: asyncio.AbstractEventLoop, rows: np.ndarray) -> None:
        """Plan, compute and deliver one tick; a failure fails this tick's streams, not the scheduler."""
        generations = self._generation[rows]
        try:
            to_process = self._process is not None and len(rows) > INLINE_MAX_ROWS
            tick = self._plan(rows, self._process.audio_block if to_process else None)
            if len(rows) <= INLINE_MAX_ROWS:
                outcome = self._compute(tick)
            elif self._process is not None:
                outcome = await self._process.compute(tick)
            else:
                outcome = await loop.run_in_executor(self._executor, self._compute, tick)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a broken model must fail its streams, not the server
            log.exception("model %s step failed", self.model.name)
            self._fail_rows(rows, generations, str(err))
            return
        for seconds, batch in outcome.steps:
            self._m_step.observe(seconds)
            self._m_batch.observe(batch)
        self._m_frames.inc(outcome.calls * self.hops_per_call)
        self._m_audio.inc(outcome.calls * self._seconds_per_call)
        try:
            self._apply(tick, outcome)
        except Exception as err:
            log.exception("model %s: delivering results failed", self.model.name)
            self._fail_rows(rows, generations, f"delivering results failed: {err}")

    def _plan(self, rows: np.ndarray, audio_out: np.ndarray | None = None) -> Tick:
        """On the loop thread: copy out everything the worker needs, and consume the audio it will use.

        Rows are ordered by how many calls they have, most first, so the rows still live in round r
        are always a prefix: every round then works on contiguous slices instead of gathered copies.
        A tick for the model process gathers its audio straight into the shared block (`audio_out`).
        """
        head = self._head[rows]
        calls = np.minimum((self._tail[rows] - head) // self.spc, ROUNDS_PER_TICK)
        if calls[0] != calls.min() or calls[0] != calls.max():
            order = np.argsort(-calls, kind="stable")
            rows, head, calls = rows[order], head[order], calls[order]
        rounds = int(calls[0])
        self._head[rows] = head + calls * self.spc
        self._inflight[rows] = True
        return Tick(
            rows=rows,
            generations=self._generation[rows],
            calls=calls,
            audio=self._gather_audio(rows, head, rounds, audio_out),
            state=self._state[rows],
            threshold=self._threshold[rows],
            frames=self._frames[rows],
            partial_every=self._partial_every[rows],
            next_partial=self._next_partial[rows],
        )

    def _gather_audio(self, rows: np.ndarray, head: np.ndarray, rounds: int,
                      out: np.ndarray | None = None) -> np.ndarray:
        """Each row's pending audio as [rounds, rows, samples_per_call], so round r is one contiguous block.

        Indexing the strided window view by row start copies whole runs of samples per row, several
        times cheaper than gathering sample by sample through a computed index array. With `out` (a
        [ROUNDS_PER_TICK, max rows, samples_per_call] array), into its leading corner instead of a new array.
        """
        span = rounds * self.spc
        per_row = self._windows[rows * self.buffer_len + head, :span].reshape(len(rows), rounds, self.spc)
        if out is None:
            return np.ascontiguousarray(per_row.transpose(1, 0, 2))
        corner = out[:rounds, : len(rows)]
        corner[...] = per_row.transpose(1, 0, 2)
        return corner

    def _compute(self, tick: Tick) -> Outcome:
        return self._stepper.compute(tick)

    def _apply(self, tick: Tick, outcome: Outcome) -> None:
        """Back on the loop thread: store each stream's new state and tell sessions what happened."""
        rows = outcome.rows
        self._inflight[rows] = False
        current = self._generation[rows] == outcome.generations
        keep = current if not current.all() else slice(None)  # a stream may have ended meanwhile
        kept = rows[keep]
        self._state[kept] = outcome.state[keep]
        self._probs[kept] = outcome.probs[keep]
        self._frames[kept] = outcome.frames[keep]
        self._next_partial[kept] = outcome.next_partial[keep]
        listeners = self._listeners
        generation = self._generation

        # Partial scores first: a row's partials in this tick are of frames before its decision, and a
        # session that has decided drops any scores that come after.
        for slot, planned, frame, probs in outcome.partials:
            if generation[slot] == planned:
                listeners[slot].on_scores(frame, probs)
        for slot, planned, frame, label_index, score in outcome.decisions:
            if generation[slot] == planned:
                self._active[slot] = False
                listeners[slot].on_decision(frame, label_index, score)

        waiting = self._waiting[kept]
        if waiting.any():
            for slot in kept[waiting].tolist():
                self._waiting[slot] = False
                listeners[slot].on_room()

        flushing = self._flushing[kept] & ~outcome.fired[keep]
        if flushing.any():
            drained = flushing & (self._tail[kept] - self._head[kept] < self.spc)
            for slot in kept[drained].tolist():
                self._active[slot] = False
                listeners[slot].on_drained()

    def _fail_rows(self, rows: np.ndarray, generations: np.ndarray, message: str) -> None:
        self._inflight[rows] = False
        for slot, generation in zip(rows.tolist(), generations.tolist()):
            listener = self._listeners[slot]
            if listener is not None and self._generation[slot] == generation:
                self._active[slot] = False
                listener.on_model_error(message)
