"""One stream's life between `ready` and its decision: audio in, threshold rule, messages out.

The heavy per-frame work (stepping the model, testing θ) happens vectorised in `engine.py`; a
session only hears about the few frames that matter (a crossing, a partial, the end of its audio)
and turns them into protocol messages on its `events` queue, which the websocket handler drains.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from firstspike import protocol
from firstspike.contract import ModelInfo
from firstspike.endpointing import Endpointer
from firstspike.server.audio_input import AudioError, AudioFormat, AudioInput
from firstspike.server.models import LoadedModel

if TYPE_CHECKING:
    from firstspike.server.engine import BatchEngine


def firing_crossing(probs: np.ndarray, firing_indices: np.ndarray, thresholds: np.ndarray):
    """The threshold rule, vectorised over a batch: max prob over the firing classes ≥ θ.

    Returns (fired mask [B], best firing label index [B], its score [B]). Filler classes never fire.
    """
    firing = probs[:, firing_indices]
    best = firing.argmax(axis=1)
    score = firing[np.arange(len(best)), best]
    return score >= thresholds, firing_indices[best], score


def audio_ms(frames: int, info: ModelInfo) -> float | int:
    """Audio position (ms) of the end of frame number `frames` (1-based)."""
    ms = frames * info.hop_samples * 1000 / info.sample_rate
    return int(ms) if float(ms).is_integer() else round(ms, 3)


def score_value(p: float) -> float:
    return round(float(p), 6)


@dataclass
class Decision:
    label: str
    score: float
    early: bool
    frame: int
    audio_ms: float | int
    received_at: float  # perf_counter() when the deciding chunk arrived
    endpointed: bool | None = None  # sessions that asked for "endpoint_ms": decided because speech ended?

    def message(self, sent_at: float) -> dict:
        message = {
            "type": protocol.DECISION,
            "label": self.label,
            "score": self.score,
            "early": self.early,
            "audio_ms": self.audio_ms,
            "frame": self.frame,
            "processing_ms": round((sent_at - self.received_at) * 1000.0, 3),
        }
        if self.endpointed is not None:
            message["endpointed"] = self.endpointed
        return message


@dataclass
class Failure:
    code: str
    message: str

    @property
    def close_code(self) -> int:
        return protocol.ERROR_CLOSE_CODES[self.code]


class StreamSession:
    """Audio decoding, buffering with backpressure, and the events one stream produces."""

    def __init__(
        self,
        session_id: str,
        model: LoadedModel,
        engine: "BatchEngine",
        fmt: AudioFormat,
        threshold: float,
        partials: bool,
        endpoint_ms: float | None = None,
    ):
        self.id = session_id
        self.model = model
        self.info = model.info
        self.engine = engine
        self.threshold = threshold
        self.partials = partials
        self.audio = AudioInput(fmt, self.info.sample_rate)
        self.events: asyncio.Queue = asyncio.Queue()
        self.started_at = time.perf_counter()
        self.last_activity = time.monotonic()
        self.samples_accepted = 0  # model-rate samples taken from the client (written or in the backlog)
        self._backlog: deque[np.ndarray] = deque()  # samples waiting for room in the engine's buffer
        self.backlogged_since: float | None = None  # time.monotonic() since when audio has waited for room
        self.on_resume: Callable[[], None] | None = None  # called when the backlog has gone
        self.stopping = False  # `stop` has begun (the client's, the end of speech's, or shutdown's)
        self.stopping_since: float | None = None  # time.monotonic() when it began
        # With "endpoint_ms": the end-of-speech detector, and whether it has ended the stream.
        self.endpointer = None if endpoint_ms is None else Endpointer(self.info.sample_rate, endpoint_ms)
        self.endpointed = False
        self._end_of_speech: asyncio.Task | None = None
        self.finished = False  # a decision or failure has been queued; nothing more will be
        self.decision: Decision | None = None
        self._room = asyncio.Event()
        # (model-rate sample count at the end of a chunk, perf_counter at its arrival), oldest first
        self._chunks: deque[tuple[int, float]] = deque()
        partial_frames = max(1, -(-protocol.PARTIALS_EVERY_MS * self.info.sample_rate // (1000 * self.info.hop_samples)))
        self.slot = engine.attach(self, threshold, partial_frames if partials else 0)

    # -- audio from the client ------------------------------------------------------------
    def feed_nowait(self, data: bytes, received_at: float) -> bool:
        """Decode one binary message and hand the engine what fits; the rest waits in a backlog.

        Returns False while audio is waiting for room (the model is behind): the caller should stop
        reading the socket until `on_resume` is called. Used directly from the websocket protocol.
        Audio that arrives once the stream is stopping is not needed. The end of speech marks the stream
        stopping at once, so messages that came in the same socket read are dropped too.
        """
        if self.stopping:
            return True
        samples = self.audio.push(data)
        ready = self._accept(samples, received_at)
        if self.endpointer is not None and self.endpointer.push(samples):
            self.endpointed = True
            self._begin_stopping()
            self._end_of_speech = asyncio.get_running_loop().create_task(self._drain_at_end_of_speech(received_at))
        return ready

    async def feed(self, data: bytes, received_at: float) -> None:
        """`feed_nowait` for a caller that reads messages itself: waits while the model is behind."""
        if not self.feed_nowait(data, received_at):
            await self._wait_for_backlog()

    async def stop(self, received_at: float, mid_sample_ok: bool = False) -> None:
        """No more audio: flush the resampler, pad the last call, and let the engine drain.

        Only the first call counts (a client's `stop` may follow the end of speech). A stream that
        ends inside a sample frame is an error, unless the server ended it (`mid_sample_ok`).
        """
        if self.stopping:
            return
        self._begin_stopping()
        await self._drain(received_at, mid_sample_ok)

    def _begin_stopping(self) -> None:
        self.stopping = True
        self.stopping_since = time.monotonic()

    async def _drain(self, received_at: float, mid_sample_ok: bool) -> None:
        """The work of a stop, once `stopping` is set (by `stop`, or at once by the end of speech)."""
        await self._wait_for_backlog()
        tail = self.audio.finish(drop_partial=mid_sample_ok)
        pad = (-(self.samples_accepted + len(tail))) % self.info.samples_per_call
        if pad:
            tail = np.concatenate([tail, np.zeros(pad, np.float32)])
        if not self._accept(tail, received_at):
            await self._wait_for_backlog()
        self.engine.flush(self.slot)

    async def _drain_at_end_of_speech(self, received_at: float) -> None:
        try:
            await self._drain(received_at, mid_sample_ok=True)
        except Exception as err:  # a task nobody awaits: its failure must reach the client
            self.fail(protocol.ERR_INTERNAL, f"internal error ending the stream: {type(err).__name__}")

    def _accept(self, samples: np.ndarray, received_at: float) -> bool:
        """Note when these samples arrived (for `processing_ms`), then write them behind any backlog."""
        if len(samples) and not self.finished:
            self.samples_accepted += len(samples)
            self._chunks.append((self.samples_accepted, received_at))
            if len(self._chunks) > 64:
                self._forget_processed_chunks()
            self._backlog.append(samples)
        return self._write_backlog()

    def _write_backlog(self) -> bool:
        """Write waiting audio into the engine, oldest first; False if some must still wait for room."""
        backlog = self._backlog
        while backlog and not self.finished:
            samples = backlog[0]
            written = self.engine.write(self.slot, samples)
            if written < len(samples):
                backlog[0] = samples[written:]
                self.engine.request_room(self.slot)
                if self.backlogged_since is None:
                    self.backlogged_since = time.monotonic()
                return False
            backlog.popleft()
        if self.backlogged_since is not None:
            # The server stopped reading this client meanwhile: its idle clock starts again now.
            self.backlogged_since = None
            self.last_activity = time.monotonic()
        return True

    async def _wait_for_backlog(self) -> None:
        while self._backlog and not self.finished:
            self._room.clear()
            await self._room.wait()

    def _forget_processed_chunks(self) -> None:
        done = self.engine.frames_of(self.slot) * self.info.hop_samples
        while len(self._chunks) > 1 and self._chunks[0][0] <= done:
            self._chunks.popleft()

    def _arrival_of(self, sample_end: int) -> float:
        for end, received_at in self._chunks:
            if end >= sample_end:
                return received_at
        return self._chunks[-1][1] if self._chunks else time.perf_counter()

    # -- what the engine tells us (always on the event loop thread) -------------------------
    def on_decision(self, frames: int, label_index: int, score: float) -> None:
        self._decide(frames, label_index, score, early=True)

    def on_scores(self, frames: int, probs: np.ndarray) -> None:
        if not self.finished:
            self.events.put_nowait(("scores", (frames, probs)))

    def on_drained(self) -> None:
        """All audio has gone through the model without a crossing: decide on the last frame."""
        if self.finished:
            return
        frames = self.engine.frames_of(self.slot)
        if frames == 0:
            self.fail(protocol.ERR_NO_AUDIO, "the stream ended before one full frame of audio")
            return
        probs = self.engine.last_probs_of(self.slot)
        best = int(probs.argmax())
        self._decide(frames, best, float(probs[best]), early=False)

    def on_room(self) -> None:
        if self._write_backlog():
            self._room.set()
            if self.on_resume is not None:
                self.on_resume()

    def on_model_error(self, message: str) -> None:
        self.fail(protocol.ERR_INTERNAL, f"model step failed: {message}")

    # -- outcome -----------------------------------------------------------------------------
    def _decide(self, frames: int, label_index: int, score: float, early: bool) -> None:
        if self.finished:
            return
        self.finished = True
        self.decision = Decision(
            label=self.info.labels[label_index],
            score=score_value(score),
            early=early,
            frame=frames,
            audio_ms=audio_ms(frames, self.info),
            received_at=self._arrival_of(frames * self.info.hop_samples),
            endpointed=None if self.endpointer is None else self.endpointed and not early,
        )
        self._room.set()
        self.events.put_nowait(("decision", self.decision))

    def fail(self, code: str, message: str) -> None:
        if self.finished:
            return
        self.finished = True
        self._room.set()
        self.events.put_nowait(("error", Failure(code, message)))

    def scores_message(self, frames: int, probs: np.ndarray) -> dict:
        return {
            "type": protocol.SCORES,
            "audio_ms": audio_ms(frames, self.info),
            "scores": {label: score_value(p) for label, p in zip(self.info.labels, probs.tolist())},
        }

    def check_length(self, max_seconds: float) -> None:
        if self.audio.input_seconds > max_seconds:
            raise AudioError(protocol.ERR_TOO_LONG, f"the stream is longer than the limit of {max_seconds:g} s")

    def close(self) -> None:
        self.finished = True
        self._room.set()
        if self._end_of_speech is not None:
            self._end_of_speech.cancel()
        self.engine.detach(self.slot)
