"""End-of-utterance detection for a live stream: speech, then enough quiet.

A live stream is answered only when a keyword crosses θ. A keyword the model is unsure of never does,
and the user hears nothing. A session that asks for `"endpoint_ms"` in its start message gets the
model's best answer once the speech is over instead: the server runs this detector on the stream's
audio and, when it fires, decides as if the client had sent `stop` (a decision with `"early": false`
and `"endpointed": true`, possibly a filler). `late_command` is how a client reads such an answer.

It is a plain energy detector on 10 ms frames, against a noise floor that follows the quietest 50 ms
stretches: the floor drops at once and rises by `FLOOR_RISE_DB` per frame, so a steady fan or hum is
the floor from the start; it starts from the first 50 ms of signal. Frames of digital silence (a device
that has just started, a looped file's seam) are no signal at all: they would drop the floor so far
that the room itself counted as speech. A sudden lasting rise of the background (a fan switched on)
counts as speech until the floor has risen to it, 2-3 s; the decision that follows is a filler or a
weak guess, and the client's next session starts over.

Standard library and numpy only: the server runs the detector, and the clients import `late_command`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

FRAME_S = 0.01
FLOOR_RISE_DB = 0.05  # per 10 ms frame: 5 dB a second
FLOOR_FRAMES = 5  # the floor follows the energy of the last 50 ms
NO_SIGNAL_ENERGY = 1e-9  # below -90 dBFS: digital silence, which neither sets the floor nor counts as speech


class Endpointer:
    """Feed it PCM as it is captured; `push` returns True once speech has been followed by `quiet_ms`."""

    def __init__(self, sample_rate: int, quiet_ms: float, margin_db: float = 10.0, min_speech_ms: float = 60.0):
        if quiet_ms <= 0:
            raise ValueError(f"quiet_ms must be positive, got {quiet_ms}")
        self.quiet_ms = quiet_ms
        self.frame = max(1, round(sample_rate * FRAME_S))
        self.quiet_frames = math.ceil(quiet_ms / 1000 / FRAME_S)
        self.min_speech_frames = max(1, math.ceil(min_speech_ms / 1000 / FRAME_S))
        self.margin_db = margin_db
        self.floor_db: float | None = None
        self.speech_frames = 0
        self.quiet_run = 0
        self._pending = np.zeros(0, np.float32)
        self._recent: deque[float] = deque(maxlen=FLOOR_FRAMES)

    @property
    def heard_speech(self) -> bool:
        return self.speech_frames >= self.min_speech_frames

    def push(self, samples: np.ndarray) -> bool:
        """Mono float samples in [-1, 1]; True when the utterance is over."""
        audio = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        whole = len(audio) // self.frame * self.frame
        self._pending = audio[whole:]
        frames = audio[:whole].reshape(-1, self.frame)
        for energy in np.mean(frames * frames, axis=1, dtype=np.float64).tolist():  # one numpy pass per push
            if self._frame(energy):
                return True
        return False

    def _frame(self, energy: float) -> bool:
        if energy < NO_SIGNAL_ENERGY:  # a device that has just started or is muted, not a quiet room
            if self.heard_speech:
                self.quiet_run += 1
            return self.heard_speech and self.quiet_run >= self.quiet_frames
        self._recent.append(energy)
        if self.floor_db is None and len(self._recent) < FLOOR_FRAMES:
            return False  # the floor starts from the first 50 ms of signal
        recent = 10.0 * math.log10(sum(self._recent) / len(self._recent))
        self.floor_db = recent if self.floor_db is None else min(recent, self.floor_db + FLOOR_RISE_DB)
        if 10.0 * math.log10(energy) > self.floor_db + self.margin_db:
            self.speech_frames += 1
            self.quiet_run = 0
        elif self.heard_speech:
            self.quiet_run += 1
        return self.heard_speech and self.quiet_run >= self.quiet_frames


def late_command(label: str, score: float, min_score: float, firing_labels) -> str | None:
    """The command in a decision taken at the end of speech, or None: a filler (a label outside the
    model's `firing_labels`, from `ready`) or a guess scored below `min_score` is no command."""
    return label if label in firing_labels and score >= min_score else None
