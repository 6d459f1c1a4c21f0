"""The batching scheduler: each tick gathers every stream with audio waiting into batched model calls.

Per-stream data lives in preallocated arrays indexed by slot (audio buffer, state vector, last
probabilities, frame count, θ), so a tick is a handful of numpy operations over the whole batch
whatever the number of streams. A tick copies out each ready stream's pending calls (up to
ROUNDS_PER_TICK) and hands them to a worker thread, which runs them as rounds: round r is one
batched call over every stream that has an r-th call and has not yet crossed θ. onnxruntime
releases the GIL, so the event loop keeps reading sockets meanwhile, and whatever arrives joins the
next tick. Each stream's state row goes in and comes back untouched by its neighbours, so batching
cannot change a stream's results.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import LoadedModel
from firstspike.server.session import firing_crossing

log = logging.getLogger("firstspike.server.engine")

# Model calls per stream per tick: a tick takes up to 100 ms of a stream's audio (10 ms hops), so
# one slow client with a huge chunk cannot hold everyone else's tick for long.
ROUNDS_PER_TICK = 10


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
    ):
        info = model.info
        self.model = model
        self.capacity = capacity
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.spc = info.samples_per_call
        self.hops_per_call = info.hops_per_call
        self.buffer_len = max(int(buffer_seconds * info.sample_rate), 2 * self.spc)
        self._firing = np.asarray(info.firing_indices, dtype=np.intp)
        self._call_offsets = np.arange(self.spc, dtype=np.intp)

        # Slot arrays. np.zeros maps untouched pages lazily, so idle capacity costs address space only.
        self._buf = np.zeros((capacity, self.buffer_len), np.float32)
        self._flat = self._buf.reshape(-1)
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
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"step-{model.name}")
        self._task: asyncio.Task | None = None
        self._rotate = 0
        self.attached = 0

        name = model.name
        self._m_batch = metrics.batch_size.labels(model=name)
        self._m_step = metrics.step_seconds.labels(model=name)
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
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"engine-{self.model.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self._executor.shutdown(wait=True)

    def _ready_rows(self) -> np.ndarray:
        hi = self._high
        ready = np.flatnonzero(self._active[:hi] & (self._tail[:hi] - self._head[:hi] >= self.spc))
        if len(ready) > self.max_batch:
            self._rotate = (self._rotate + self.max_batch) % len(ready)
            ready = np.roll(ready, -self._rotate)[: self.max_batch]
        return ready

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            rows = self._ready_rows()
            if len(rows) == 0:
                self._wake.clear()
                await self._wake.wait()
                if self.max_wait > 0 and self.attached > 1:
                    await asyncio.sleep(self.max_wait)  # let other streams' chunks join this batch
                continue
            tick = self._plan(rows)
            try:
                outcome = await loop.run_in_executor(self._executor, self._compute, tick)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a broken model must fail its streams, not the server
                log.exception("model %s step failed", self.model.name)
                self._fail_rows(tick.rows, tick.generations, str(err))
                continue
            self._m_frames.inc(outcome.calls * self.hops_per_call)
            self._m_audio.inc(outcome.calls * self._seconds_per_call)
            for size, seconds in zip(outcome.batch_sizes, outcome.step_seconds):
                self._m_batch.observe(size)
                self._m_step.observe(seconds)
            try:
                self._apply(tick, outcome)
            except Exception:
                log.exception("model %s: delivering results failed", self.model.name)

    def _plan(self, rows: np.ndarray) -> "_Tick":
        """On the loop thread: copy out everything the worker needs, and consume the audio it will use."""
        calls = np.minimum((self._tail[rows] - self._head[rows]) // self.spc, ROUNDS_PER_TICK)
        rounds = int(calls.max())
        span = rounds * self.spc
        index = (rows * self.buffer_len + self._head[rows])[:, None] + np.arange(span, dtype=np.intp)
        np.minimum(index, self._flat.size - 1, out=index)  # past a row's pending audio: never used
        audio = self._flat[index]
        self._head[rows] += calls * self.spc
        self._inflight[rows] = True
        return _Tick(
            rows=rows,
            generations=self._generation[rows],
            calls=calls,
            audio=audio,
            state=self._state[rows],
            threshold=self._threshold[rows],
            frames=self._frames[rows],
            partial_every=self._partial_every[rows],
            next_partial=self._next_partial[rows],
        )

    def _compute(self, tick: "_Tick") -> "_Outcome":
        """In the worker thread: up to ROUNDS_PER_TICK model calls, each over every row with audio left.

        A row leaves the tick as soon as it crosses θ, so no stream is stepped past its decision.
        """
        spc, hpc = self.spc, self.hops_per_call
        state, frames, next_partial = tick.state, tick.frames, tick.next_partial
        n = len(tick.rows)
        probs_last = np.zeros((n, self._probs.shape[1]), np.float32)
        fired_any = np.zeros(n, bool)
        decisions: list[tuple[int, int, int, float]] = []
        partials: list[tuple[int, int, np.ndarray]] = []
        batch_sizes: list[int] = []
        step_seconds: list[float] = []
        total_calls = 0
        everyone = np.arange(n)
        want_partials = bool((tick.partial_every > 0).any())
        for r in range(int(tick.calls.max())):
            live_mask = (tick.calls > r) & ~fired_any
            live = everyone if live_mask.all() else np.flatnonzero(live_mask)
            if len(live) == 0:
                break
            audio = np.ascontiguousarray(tick.audio[live, r * spc : (r + 1) * spc])
            began = time.perf_counter()
            probs, state_out = self.model.run(audio, state[live] if len(live) < n else state)
            step_seconds.append(time.perf_counter() - began)
            state[live] = state_out
            probs_last[live] = probs
            frames[live] += hpc
            batch_sizes.append(len(live))
            total_calls += len(live)
            fired, label_index, score = firing_crossing(probs, self._firing, tick.threshold[live])
            if fired.any():
                for j in np.flatnonzero(fired).tolist():
                    row = int(live[j])
                    fired_any[row] = True
                    decisions.append((row, int(frames[row]), int(label_index[j]), float(score[j])))
            if want_partials:
                due = (tick.partial_every[live] > 0) & (frames[live] >= next_partial[live]) & ~fired
                for j in np.flatnonzero(due).tolist():
                    row = int(live[j])
                    next_partial[row] = frames[row] + tick.partial_every[row]
                    partials.append((row, int(frames[row]), probs[j].copy()))
        return _Outcome(state, probs_last, frames, next_partial, fired_any, decisions, partials, batch_sizes,
                        step_seconds, total_calls)

    def _apply(self, tick: "_Tick", outcome: "_Outcome") -> None:
        """Back on the loop thread: store each stream's new state and tell sessions what happened."""
        rows = tick.rows
        self._inflight[rows] = False
        current = self._generation[rows] == tick.generations
        keep = current if not current.all() else slice(None)  # a stream may have ended meanwhile
        kept = rows[keep]
        self._state[kept] = outcome.state[keep]
        self._probs[kept] = outcome.probs[keep]
        self._frames[kept] = outcome.frames[keep]
        self._next_partial[kept] = outcome.next_partial[keep]
        listeners = self._listeners

        for row, frame, label_index, score in outcome.decisions:
            if current[row]:
                slot = int(rows[row])
                self._active[slot] = False
                listeners[slot].on_decision(frame, label_index, score)
        for row, frame, probs in outcome.partials:
            if current[row]:
                listeners[int(rows[row])].on_scores(frame, probs)

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


@dataclass
class _Tick:
    rows: np.ndarray  # slots in this tick
    generations: np.ndarray  # their generations when planned (a changed one means the stream ended)
    calls: np.ndarray  # model calls each row has audio for
    audio: np.ndarray  # [rows, rounds * samples_per_call]
    state: np.ndarray
    threshold: np.ndarray
    frames: np.ndarray
    partial_every: np.ndarray
    next_partial: np.ndarray


@dataclass
class _Outcome:
    state: np.ndarray
    probs: np.ndarray
    frames: np.ndarray
    next_partial: np.ndarray
    fired: np.ndarray
    decisions: list  # (row, frame, label index, score)
    partials: list  # (row, frame, probs)
    batch_sizes: list
    step_seconds: list
    calls: int
