"""One tick's model calls: the rounds (or segments) that step a batch of streams and test θ.

This is the part of a tick that needs no loop and no slot arrays: a `Tick` of copied-out rows goes
in, an `Outcome` comes out. So it runs wherever the engine sends it: on the loop thread for a tiny
tick, in the engine's worker thread, or in a model process of its own (server/model_process.py),
and each gives the same results, bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from firstspike.server.models import LoadedModel
from firstspike.server.session import firing_crossing


class TickStepper:
    """Steps ticks through one model."""

    def __init__(self, model: LoadedModel):
        self.model = model
        self.hops_per_call = model.info.hops_per_call
        self._n_labels = len(model.info.labels)
        self._firing = np.asarray(model.info.firing_indices, dtype=np.intp)
        self._firing_columns = as_slice_if_contiguous(self._firing)

    def compute(self, tick: "Tick") -> "Outcome":
        """The tick's model calls (up to engine.ROUNDS_PER_TICK), each over every row with audio left.

        A row leaves the tick as soon as it crosses θ, so no stream is stepped past its decision.
        """
        if self.model.info.variable_hops:
            return self._compute_segments(tick)
        work = Work(tick, self._n_labels)
        want_partials = bool((tick.partial_every > 0).any())
        for r in range(int(tick.calls[0])):
            live = work.live_in_round(r)
            if live == 0:
                break
            began = time.perf_counter()
            probs, state_out = self.model.run(work.audio[r, :live], work.state_prefix(live))
            work.steps.append((time.perf_counter() - began, live))
            work.store(live, probs, state_out, self.hops_per_call)
            crossed = self._crossed(probs, work.threshold[:live])
            if want_partials:
                work.collect_partials(live, probs, crossed)
            if crossed is not None:
                work.retire(crossed, probs, self._firing)
        return work.outcome()

    def _compute_segments(self, tick: "Tick") -> "Outcome":
        """`compute` for a variable_hops model: each call covers every hop the live rows all have.

        Rows are sorted by their number of calls, most first, so the live prefix's last row has the
        fewest left: that many hops go into one call. A row that crosses θ inside the segment decides
        at that hop; the hops after it in the same call are computed but never used.
        """
        work = Work(tick, self._n_labels)
        want_partials = bool((tick.partial_every > 0).any())
        done = 0
        while True:
            live = work.live_in_round(done)
            if live == 0:
                break
            span = int(work.calls[live - 1]) - done
            audio = work.audio[done: done + span, :live].transpose(1, 0, 2).reshape(live, -1)  # [live, span · spc]
            began = time.perf_counter()
            frame_probs, state_out = self.model.run_frames(audio, work.state_prefix(live))
            work.steps.append((time.perf_counter() - began, live))
            best = frame_probs[:, :, self._firing_columns].max(axis=2)  # [live, span]
            hit = best >= work.threshold[:live, None]
            fired = hit.any(axis=1)
            stop = np.where(fired, hit.argmax(axis=1), span - 1)  # each row's last hop that counts
            at_stop = frame_probs[np.arange(live), stop]
            if want_partials:
                work.collect_segment_partials(live, frame_probs, np.where(fired, stop, span))
            work.store(live, at_stop, state_out, stop + 1, computed=live * span)
            if fired.any():
                work.retire(np.flatnonzero(fired), at_stop, self._firing)
            done += span
        return work.outcome()

    def _crossed(self, probs: np.ndarray, threshold: np.ndarray) -> np.ndarray | None:
        """Positions (within this round's batch) whose best firing class reached θ; None for none.

        One max over the firing columns answers the common case (nobody fired) without building
        the per-row label and score that `firing_crossing` returns for the rare rows that did.
        """
        crossed = probs[:, self._firing_columns].max(axis=1) >= threshold
        return np.flatnonzero(crossed) if crossed.any() else None


@dataclass
class Tick:
    rows: np.ndarray  # slots in this tick
    generations: np.ndarray  # their generations when planned (a changed one means the stream ended)
    calls: np.ndarray  # model calls each row has audio for, most first
    audio: np.ndarray  # [rounds, rows, samples_per_call]
    state: np.ndarray
    threshold: np.ndarray
    frames: np.ndarray
    partial_every: np.ndarray
    next_partial: np.ndarray


class Work:
    """One tick's rows while the worker steps them, kept so that the live rows are always a prefix.

    Rows come sorted by their number of calls, most first, so rows that run out of audio drop off
    the end. A row that crosses θ is moved behind the live ones (a stable reorder, which keeps the
    sort) together with everything else about it, so its state stays exactly as it was at its
    decision. Everything is indexed by position; decisions and partials name their slot instead.
    """

    def __init__(self, tick: Tick, n_labels: int):
        n = len(tick.rows)
        self.rows, self.generations, self.calls = tick.rows, tick.generations, tick.calls
        self.audio, self.state, self.threshold = tick.audio, tick.state, tick.threshold
        self.frames, self.partial_every, self.next_partial = tick.frames, tick.partial_every, tick.next_partial
        self.probs = np.zeros((n, n_labels), np.float32)
        self.fired = np.zeros(n, bool)
        self.limit = n  # positions from here on have decided
        self.decisions: list[tuple[int, int, int, int, float]] = []  # (slot, generation, frame, label, score)
        self.partials: list[tuple[int, int, int, np.ndarray]] = []  # (slot, generation, frame, probs)
        self.calls_done = 0
        self.steps: list[tuple[float, int]] = []  # (seconds, batch) of each model call

    def live_in_round(self, r: int) -> int:
        """How many leading positions have an r-th call and no decision yet."""
        limit = self.limit
        if limit == 0 or self.calls[limit - 1] > r:
            return limit
        return int(np.count_nonzero(self.calls[:limit] > r))

    def state_prefix(self, live: int) -> np.ndarray:
        return self.state if live == len(self.state) else self.state[:live]

    def store(self, live: int, probs: np.ndarray, state_out: np.ndarray, hops: int | np.ndarray,
              computed: int | None = None) -> None:
        """Keep one call's results; with every row live the model's output array simply becomes the state.

        `hops` is how far each row's frame count moves (one number, or one per row for a segment in
        which some rows decided early); `computed`, the hops the model stepped (default: one call a row)."""
        if live == len(self.state):
            self.state = state_out
        else:
            self.state[:live] = state_out
        self.probs[:live] = probs
        self.frames[:live] += hops
        self.calls_done += live if computed is None else computed

    def collect_partials(self, live: int, probs: np.ndarray, crossed: np.ndarray | None) -> None:
        """Rows whose partial-scores interval has come round (a row that decides gets its decision instead)."""
        every, frames = self.partial_every[:live], self.frames[:live]
        due = (every > 0) & (frames >= self.next_partial[:live])
        if crossed is not None:
            due[crossed] = False
        for j in np.flatnonzero(due).tolist():
            self.next_partial[j] = frames[j] + every[j]
            self.partials.append((int(self.rows[j]), int(self.generations[j]), int(frames[j]), probs[j].copy()))

    def collect_segment_partials(self, live: int, frame_probs: np.ndarray, usable: np.ndarray) -> None:
        """`collect_partials` over a segment's hops: row j's first `usable[j]` hops (a deciding hop gets
        the decision instead), before `store` moves the frame counts on."""
        for j in np.flatnonzero(self.partial_every[:live] > 0).tolist():
            every, before = int(self.partial_every[j]), int(self.frames[j])
            for k in range(int(usable[j])):
                frame = before + k + 1
                if frame >= self.next_partial[j]:
                    self.next_partial[j] = frame + every
                    self.partials.append((int(self.rows[j]), int(self.generations[j]), frame, frame_probs[j, k].copy()))

    def retire(self, crossed: np.ndarray, probs: np.ndarray, firing: np.ndarray) -> None:
        """Record the decisions of the rows that crossed θ and move them out of the live prefix."""
        _, label_index, score = firing_crossing(probs[crossed], firing, self.threshold[crossed])
        for j, label, value in zip(crossed.tolist(), label_index.tolist(), score.tolist()):
            self.decisions.append((int(self.rows[j]), int(self.generations[j]), int(self.frames[j]), label, value))
        self.fired[crossed] = True
        order = np.argsort(self.fired, kind="stable")
        for name in ("rows", "generations", "calls", "state", "threshold", "frames", "partial_every",
                     "next_partial", "probs", "fired"):
            setattr(self, name, getattr(self, name)[order])
        self.audio = self.audio[:, order]
        self.limit = len(self.fired) - int(np.count_nonzero(self.fired))

    def outcome(self) -> "Outcome":
        return Outcome(self.rows, self.generations, self.state, self.probs, self.frames, self.next_partial,
                        self.fired, self.decisions, self.partials, self.calls_done, self.steps)


@dataclass
class Outcome:
    rows: np.ndarray  # the tick's slots, in the order of the arrays below
    generations: np.ndarray
    state: np.ndarray
    probs: np.ndarray
    frames: np.ndarray
    next_partial: np.ndarray
    fired: np.ndarray
    decisions: list  # (slot, generation, frame, label index, score)
    partials: list  # (slot, generation, frame, probs)
    calls: int
    steps: list  # (seconds, batch) of each model call, for the step and batch-size metrics


def as_slice_if_contiguous(indices: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive column indices as a slice, so selecting them is a view, not a copy."""
    if len(indices) and np.array_equal(indices, np.arange(indices[0], indices[0] + len(indices))):
        return slice(int(indices[0]), int(indices[0]) + len(indices))
    return indices
