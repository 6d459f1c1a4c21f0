"""Client audio → float32 mono samples at the model's rate, one stream at a time.

A client may send PCM in chunks of any size, so a chunk can end in the middle of a sample: the
leftover bytes wait for the next chunk. Resampling uses one soxr `ResampleStream` per stream, whose
filter state carries across chunks, so chunking never changes the samples the model sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from firstspike import protocol

_DTYPES = {"pcm_s16le": np.dtype("<i2"), "pcm_f32le": np.dtype("<f4")}
_S16_SCALE = np.float32(1.0 / 32768.0)


class AudioError(ValueError):
    """Audio the server cannot accept; `code` is a protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class AudioFormat:
    encoding: str
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        if self.encoding not in protocol.SUPPORTED_ENCODINGS:
            raise AudioError(
                protocol.ERR_UNSUPPORTED_FORMAT,
                f"encoding {self.encoding!r} is not supported; use one of {sorted(protocol.SUPPORTED_ENCODINGS)}",
            )
        if self.sample_rate not in protocol.SUPPORTED_RATES:
            raise AudioError(
                protocol.ERR_UNSUPPORTED_FORMAT,
                f"sample_rate {self.sample_rate} is not supported; use one of {list(protocol.SUPPORTED_RATES)}",
            )
        if self.channels not in protocol.SUPPORTED_CHANNELS:
            raise AudioError(
                protocol.ERR_UNSUPPORTED_FORMAT,
                f"channels {self.channels} is not supported; use one of {list(protocol.SUPPORTED_CHANNELS)}",
            )

    @property
    def bytes_per_frame(self) -> int:
        return protocol.SUPPORTED_ENCODINGS[self.encoding] * self.channels


class Resampler:
    """Streaming resampler to the model rate; a pass-through when the rates already agree."""

    def __init__(self, in_rate: int, out_rate: int):
        self._stream = (
            None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")
        )

    def push(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


class AudioInput:
    """Decodes one stream's binary messages into model-rate mono float32 samples."""

    def __init__(self, fmt: AudioFormat, model_rate: int):
        self.format = fmt
        self._dtype = _DTYPES[fmt.encoding]
        self._bytes_per_frame = fmt.bytes_per_frame
        self._carry = b""
        self._resampler = Resampler(fmt.sample_rate, model_rate)
        self.input_frames = 0  # sample frames (per channel) received so far

    @property
    def input_seconds(self) -> float:
        return self.input_frames / self.format.sample_rate

    def push(self, data: bytes) -> np.ndarray:
        """Decode one binary message; returns the model-rate samples it completes (maybe none)."""
        if self._carry:
            data = self._carry + data
        whole = len(data) - len(data) % self._bytes_per_frame
        self._carry = bytes(data[whole:]) if whole < len(data) else b""
        if whole == 0:
            return np.zeros(0, np.float32)
        raw = np.frombuffer(data, dtype=self._dtype, count=whole // self._dtype.itemsize)
        return self._resampler.push(self._to_mono(raw))

    def push_samples(self, samples: np.ndarray) -> np.ndarray:
        """Feed already-decoded float samples, shaped [n] or [n, channels] (used for uploaded files)."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 2:
            self.input_frames += samples.shape[0]
            samples = self._checked(samples).mean(axis=1, dtype=np.float32)
        else:
            self.input_frames += samples.shape[0]
            samples = self._checked(samples)
        return self._resampler.push(np.ascontiguousarray(samples))

    def finish(self, drop_partial: bool = False) -> np.ndarray:
        """End of stream: flush the resampler. A dangling partial sample is an error, not silence,
        unless the server itself ended the stream mid-message (`drop_partial`)."""
        if self._carry and not drop_partial:
            raise AudioError(
                protocol.ERR_INVALID_AUDIO,
                f"the stream ended {len(self._carry)} byte(s) into a sample frame "
                f"({self._bytes_per_frame} bytes each for {self.format.encoding} × {self.format.channels} channel(s))",
            )
        return self._resampler.push(np.zeros(0, np.float32), last=True)

    def _to_mono(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype.kind == "i":
            samples = np.multiply(raw, _S16_SCALE, dtype=np.float32)  # one pass: cast and scale
        else:
            samples = self._checked(raw.astype(np.float32))
        channels = self.format.channels
        self.input_frames += samples.shape[0] // channels
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
        return samples

    @staticmethod
    def _checked(samples: np.ndarray) -> np.ndarray:
        """Refuse NaN/inf (they would poison the stream's LSTM state); clip to the contract's [-1, 1]."""
        if not np.isfinite(samples).all():
            raise AudioError(protocol.ERR_INVALID_AUDIO, "audio contains NaN or infinite samples")
        return np.clip(samples, -1.0, 1.0, out=samples if samples.flags.writeable else None)
