"""WAV reading/writing, resampling and speech bounds on real files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from firstspike.model.data.audio import AudioError, load_wav, resample, speech_bounds, wav_bytes, write_wav


def _tone(seconds: float, sr: int = 16000, hz: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_round_trip_is_pcm16_exact(tmp_path):
    audio = _tone(0.5)
    write_wav(tmp_path / "a.wav", audio)
    back = load_wav(tmp_path / "a.wav")
    assert back.dtype == np.float32 and back.shape == audio.shape
    assert np.max(np.abs(back - audio)) < 1.0 / 16000
    assert not list(tmp_path.glob(".*.tmp")), "atomic write left a temporary file"


def test_stereo_is_downmixed(tmp_path):
    left, right = _tone(0.2), np.zeros(3200, np.float32)
    pcm = (np.stack([left, right], axis=1) * 32767).round().astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 2, 16000, 64000, 4, 16) + b"data" + struct.pack("<I", len(pcm))
    (tmp_path / "s.wav").write_bytes(header + pcm)
    assert np.allclose(load_wav(tmp_path / "s.wav"), left / 2, atol=1e-4)


def test_wrong_rate_names_both_rates(tmp_path):
    write_wav(tmp_path / "r.wav", _tone(0.1, 8000), 8000)
    with pytest.raises(AudioError, match=r"r\.wav.*8000 Hz, expected 16000 Hz"):
        load_wav(tmp_path / "r.wav")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"not a wav file at all", "not a RIFF/WAVE"),
        (wav_bytes(_tone(0.5), 16000)[:5000], "truncated"),
        (wav_bytes(np.zeros(0, np.float32), 16000), "no audio samples"),
        (wav_bytes(_tone(0.1), 16000)[:30], "truncated 'fmt '"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message) as err:
        load_wav(path)
    assert "bad.wav" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_wav(tmp_path / "nope.wav")


@pytest.mark.parametrize("sr_in, sr_out", [(22050, 16000), (32000, 16000), (8000, 16000), (48000, 16000)])
def test_resample_keeps_a_tone(sr_in, sr_out):
    out = resample(_tone(1.0, sr_in), sr_in, sr_out)
    assert out.size == sr_out
    want = _tone(1.0, sr_out)
    assert np.max(np.abs(out[500:-500] - want[500:-500])) < 1e-3


def test_speech_bounds_find_a_burst():
    audio = np.zeros(16000, np.float32)
    audio[4800:9600] = _tone(0.3)
    onset, offset = speech_bounds(audio)
    assert abs(onset - 300) <= 20 and abs(offset - 600) <= 30
    assert speech_bounds(np.zeros(16000, np.float32)) is None
