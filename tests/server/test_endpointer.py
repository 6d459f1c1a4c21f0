"""End-of-utterance detection (`firstspike/endpointing.py`, which the server runs for sessions with
`endpoint_ms`): speech, then enough quiet, against a floor that follows the background."""

import numpy as np
import pytest

from firstspike.endpointing import Endpointer, late_command

RATE = 16000


def _noise(seconds: float, dbfs: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def _fed_in_chunks(endpoint: Endpointer, audio: np.ndarray, chunk: int) -> float | None:
    """Seconds of audio pushed when the endpointer fired, or None."""
    for start in range(0, len(audio), chunk):
        if endpoint.push(audio[start: start + chunk]):
            return (start + len(audio[start: start + chunk])) / RATE
    return None


@pytest.mark.parametrize("chunk", [160, 1600, 1237])
def test_fires_after_speech_and_the_quiet_that_follows(chunk):
    word = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(0.4 * RATE)) / RATE).astype(np.float32)
    audio = np.concatenate([_noise(0.5, -60, 0), word + _noise(0.4, -60, 1), _noise(2.0, -60, 2)])
    fired = _fed_in_chunks(Endpointer(RATE, quiet_ms=500), audio, chunk)
    assert fired is not None
    assert 0.9 + 0.5 <= fired <= 0.9 + 0.5 + chunk / RATE + 0.02  # word ends at 0.9 s; 500 ms of quiet


@pytest.mark.parametrize("dbfs", [-80, -50, -30])
def test_steady_background_never_fires(dbfs):
    endpoint = Endpointer(RATE, quiet_ms=300)
    assert _fed_in_chunks(endpoint, _noise(5.0, dbfs, 3), 1600) is None
    assert not endpoint.heard_speech


def test_a_frame_of_digital_silence_does_not_turn_the_background_into_speech():
    """A looped file's seam: one 10 ms frame of zeros between repeats of the background."""
    background = _noise(1.0, -40, 6)
    audio = np.concatenate([background, np.zeros(160, np.float32), background, np.zeros(160, np.float32), background])
    endpoint = Endpointer(RATE, quiet_ms=300)
    assert _fed_in_chunks(endpoint, audio, 320) is None
    assert not endpoint.heard_speech


def test_a_device_that_starts_with_digital_silence_does_not_make_the_room_speech():
    """A browser's capture starts with a few frames of zeros before the room's own noise."""
    audio = np.concatenate([np.zeros(480, np.float32), _noise(3.0, -50, 7)])
    endpoint = Endpointer(RATE, quiet_ms=300)
    assert _fed_in_chunks(endpoint, audio, 320) is None
    assert not endpoint.heard_speech and endpoint.floor_db == pytest.approx(-50, abs=2)


def test_a_click_is_not_speech():
    audio = _noise(2.0, -60, 5)
    audio[8000:8080] = 0.5  # 5 ms
    assert _fed_in_chunks(Endpointer(RATE, quiet_ms=300), audio, 1600) is None


def test_rejects_a_zero_wait():
    with pytest.raises(ValueError, match="quiet_ms"):
        Endpointer(RATE, quiet_ms=0)


def test_a_late_answer_is_a_command_only_when_sure_and_a_firing_label():
    firing = ("yes", "no", "go")
    assert late_command("yes", 0.85, 0.8, firing) == "yes"
    assert late_command("yes", 0.55, 0.8, firing) is None
    assert late_command("_unknown_", 0.99, 0.8, firing) is None and late_command("_silence_", 0.99, 0.0, firing) is None
    assert late_command("go", 0.1, 0.0, firing) == "go"
