"""Fixtures for the server tests: one shared real server, and real speech from espeak-ng.

Most tests assert structure and consistency (same decision alone and batched, across rates and
chunkings) on espeak-ng speech; test_bundled_model.py checks which word the bundled model hears in
the held-out samples of samples/.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from server_harness import RunningServer, at_rate, running_server

WORDS = ("yes", "no", "stop", "left")


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with running_server(max_sessions=400, idle_timeout_s=3.0, start_timeout_s=2.0) as running:
        yield running


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, tuple[np.ndarray, int]]:
    """word → (float32 mono samples, rate) as espeak-ng speaks it (22050 Hz)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required for the server tests (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")
    clips = {}
    for word in WORDS:
        path = folder / f"{word}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), word], check=True, capture_output=True)
        samples, rate = sf.read(path, dtype="float32")
        clips[word] = (samples, rate)
    return clips


@pytest.fixture(scope="session")
def yes16k(speech) -> np.ndarray:
    samples, rate = speech["yes"]
    return at_rate(samples, rate, 16000)


@pytest.fixture(scope="session")
def wav_file(speech, tmp_path_factory) -> Path:
    samples, rate = speech["yes"]
    path = tmp_path_factory.mktemp("wav") / "yes16k.wav"
    sf.write(path, at_rate(samples, rate, 16000), 16000, subtype="PCM_16")
    return path
