"""WAV reading and writing, resampling and speech-bound detection with numpy only.

Why our own RIFF reader: a corpus must refuse truncated or mislabelled files loudly instead of
training on half a clip, and the checks (declared data size against the bytes really there, the
sample rate in the header) are easiest to make exactly when we parse the header ourselves.
"""

from __future__ import annotations

import os
import struct
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)  # sizes some TTS engines write when piping


class AudioError(ValueError):
    """An audio file is unreadable, truncated, empty or not in the expected format."""


def _parse_wav(data: bytes, name: str, lenient_size: bool) -> tuple[np.ndarray, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{name}: not a RIFF/WAVE file")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioError(f"{name}: truncated 'fmt ' chunk")
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE and size >= 40:
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, rate, align, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError(f"{name}: 'data' chunk before 'fmt ' chunk")
            available = len(data) - body
            if size in _STREAMING_SIZES and lenient_size:
                size = available - available % max(fmt[3], 1)
            if size > available:
                raise AudioError(
                    f"{name}: truncated: header declares {size} bytes of audio, only {available} present"
                )
            return _decode(data[body : body + size], fmt, name), fmt[2]
        pos = body + size + (size & 1)
    raise AudioError(f"{name}: no 'data' chunk" if fmt else f"{name}: no 'fmt ' chunk")


def _decode(raw: bytes, fmt: tuple[int, int, int, int, int], name: str) -> np.ndarray:
    tag, channels, _, align, bits = fmt
    if channels < 1 or align != channels * bits // 8:
        raise AudioError(f"{name}: malformed format ({channels} channels, {bits} bits, block {align})")
    usable = len(raw) - len(raw) % align
    if tag == _PCM and bits == 16:
        audio = np.frombuffer(raw[:usable], "<i2").astype(np.float32) / 32768.0
    elif tag == _PCM and bits == 8:
        audio = (np.frombuffer(raw[:usable], np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(raw[:usable], np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        audio = ints.astype(np.float32) / 8388608.0
    elif tag == _PCM and bits == 32:
        audio = (np.frombuffer(raw[:usable], "<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif tag == _FLOAT and bits == 32:
        audio = np.clip(np.frombuffer(raw[:usable], "<f4"), -1.0, 1.0).astype(np.float32)
    else:
        raise AudioError(f"{name}: unsupported encoding (format tag {tag}, {bits} bits)")
    audio = audio.reshape(-1, channels)
    return audio.mean(axis=1, dtype=np.float32) if channels > 1 else audio[:, 0].copy()


def read_wav_any_rate(path: str | os.PathLike, lenient_size: bool = False) -> tuple[np.ndarray, int]:
    """Read a WAV at whatever rate it has: (mono float32 audio, sample rate).

    `lenient_size` accepts the placeholder data sizes that engines write when streaming to a pipe.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except OSError as err:
        raise AudioError(f"{name}: cannot read ({err.strerror})") from None
    if not data:
        raise AudioError(f"{name}: empty file")
    audio, rate = _parse_wav(data, name, lenient_size)
    if audio.size == 0:
        raise AudioError(f"{name}: contains no audio samples")
    return audio, rate


def load_wav(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load a WAV as float32 mono in [-1, 1]; stereo is downmixed, any other rate is an error."""
    audio, rate = read_wav_any_rate(path)
    if rate != sample_rate:
        raise AudioError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz")
    return audio


def wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    """Encode mono float audio as a PCM16 WAV file image (values outside [-1, 1] are clipped)."""
    pcm = (np.clip(np.asarray(audio, np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, _PCM, 1, sr, sr * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(pcm)) + pcm


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_wav(path: str | os.PathLike, audio: np.ndarray, sr: int = SAMPLE_RATE) -> None:
    """Write mono PCM16, atomically."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(f"{path}: write_wav expects mono 1-D audio, got shape {audio.shape}")
    atomic_write_bytes(path, wav_bytes(audio, sr))


def is_smooth(n: int) -> bool:
    """True when n has no prime factor above 7, so an FFT of that length is fast."""
    for prime in (2, 3, 5, 7):
        while n % prime == 0:
            n //= prime
    return n == 1


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling by FFT between integer rates.

    The signal is zero-padded (against wrap-around) to a length whose FFT is fast and whose
    resampled length is a whole number, so the rate change is exact.
    """
    audio = np.asarray(audio, np.float32)
    if sr_in == sr_out or audio.size == 0:
        return audio.copy()
    ratio = Fraction(int(sr_out), int(sr_in))
    pad = ratio.denominator * -(-256 // ratio.denominator)  # whole input periods: exact alignment
    k = -(-(audio.size + 2 * pad) // ratio.denominator)
    while not is_smooth(k):
        k += 1
    n, m = k * ratio.denominator, k * ratio.numerator
    padded = np.zeros(n, np.float32)
    padded[pad : pad + audio.size] = audio
    spectrum = np.fft.rfft(padded)
    out_bins = m // 2 + 1
    kept = min(out_bins, spectrum.size)
    new = np.zeros(out_bins, np.complex128)
    new[:kept] = spectrum[:kept]
    if m < n and m % 2 == 0:
        new[-1] = new[-1].real  # the Nyquist bin of an even length must be real
    out = np.fft.irfft(new, m) * (m / n)
    start = pad * ratio.numerator // ratio.denominator
    return out[start : start + int(round(audio.size * ratio))].astype(np.float32)


def frame_energy_db(audio: np.ndarray, sr: int, frame_ms: float = 20.0, hop_ms: float = 10.0) -> np.ndarray:
    """Framewise energy in dBFS (frame t starts at t * hop)."""
    frame, hop = int(sr * frame_ms / 1000), int(sr * hop_ms / 1000)
    if audio.size < frame:
        audio = np.pad(audio, (0, frame - audio.size))
    count = 1 + (audio.size - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    power = np.mean(np.asarray(audio, np.float64)[idx] ** 2, axis=1)
    return 10.0 * np.log10(power + 1e-12)


def speech_bounds(
    audio: np.ndarray,
    sr: int = SAMPLE_RATE,
    below_peak_db: float = 40.0,
    above_floor_db: float = 12.0,
    min_gap_ms: float = 300.0,
) -> tuple[float, float] | None:
    """Energy voice-activity bounds (onset_ms, offset_ms) of the speech in `audio`, or None.

    A frame is speech when it lies within `below_peak_db` of the loudest frame and `above_floor_db`
    above the noise floor (10th percentile). On clean TTS the floor is digital silence, so weak
    fricatives (the f of "four") still count. The span runs from the first to the last speech frame
    of the loudest active region, bridging pauses shorter than `min_gap_ms` (stop closures).
    """
    hop_ms = 10.0
    energy = frame_energy_db(audio, sr, hop_ms=hop_ms)
    peak, floor = float(energy.max()), float(np.percentile(energy, 10))
    if peak < -70.0:
        return None
    threshold = max(peak - below_peak_db, floor + above_floor_db, -75.0)
    active = np.flatnonzero(energy >= threshold)
    if active.size == 0:
        return None
    gaps = np.flatnonzero(np.diff(active) * hop_ms > min_gap_ms)
    starts = np.concatenate([[0], gaps + 1])
    ends = np.concatenate([gaps, [active.size - 1]])
    loudest = int(np.argmax(energy))  # always active, so exactly one region holds it
    start, end = next((s, e) for s, e in zip(active[starts], active[ends]) if s <= loudest <= e)
    onset = start * hop_ms
    offset = min(end * hop_ms + 20.0, 1000.0 * audio.size / sr)
    return float(onset), float(offset)
