"""Fixtures for the server tests: one shared real server, and real speech from espeak-ng.

Most tests assert structure and consistency (same decision alone and batched, across rates and
chunkings) on espeak-ng speech; test_bundled_model.py checks which word the bundled model hears in
the held-out samples of samples/.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from server_harness import RunningServer, at_rate, running_server

WORDS = ("yes", "no", "stop", "left")
BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "default" / "checkpoint.pt"


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    with running_server(max_sessions=400, idle_timeout_s=3.0, start_timeout_s=2.0) as running:
        yield running


@pytest.fixture(scope="session")
def process_server() -> Iterator[RunningServer]:
    """The same server with its model calls in a model process (`--step-in process`)."""
    with running_server(max_sessions=400, idle_timeout_s=3.0, start_timeout_s=2.0, step_in="process") as running:
        yield running


@pytest.fixture(scope="session")
def int8_server(tmp_path_factory) -> Iterator[RunningServer]:
    """A second server, on the bundled model exported with `--quantize all` (int8 frontend and LSTM; in a
    subprocess: the server's tests never import torch themselves)."""
    path = tmp_path_factory.mktemp("int8") / "int8.onnx"
    subprocess.run([str(Path(sys.executable).with_name("firstspike")), "export", str(BUNDLED_CHECKPOINT),
                    "-o", str(path), "--model-name", "firstspike-sc12", "--quantize", "all"],
                   check=True, capture_output=True)
    with running_server(models=[str(path)], max_sessions=400, idle_timeout_s=3.0, start_timeout_s=2.0) as running:
        assert json.loads(running.get("/v1/models")[1])["models"][0]["graph"] == "fused+int8-frontend+int8"
        yield running


@pytest.fixture(scope="session")
def multi_hop_server(tmp_path_factory) -> Iterator[RunningServer]:
    """A server on the bundled checkpoint exported as `--graph multi-hop` (any number of hops per call)."""
    path = tmp_path_factory.mktemp("multi-hop") / "multi-hop.onnx"
    subprocess.run([str(Path(sys.executable).with_name("firstspike")), "export", str(BUNDLED_CHECKPOINT),
                    "-o", str(path), "--model-name", "firstspike-sc12", "--graph", "multi-hop"],
                   check=True, capture_output=True)
    with running_server(models=[str(path)], max_sessions=400, idle_timeout_s=3.0, start_timeout_s=2.0) as running:
        described = json.loads(running.get("/v1/models")[1])["models"][0]
        assert described["graph"] == "multi-hop" and described["variable_hops"] is True
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
