"""`examples/stream_wav.py`, the one-file client the protocol docs point integrators at, against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "stream_wav.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=60)


def test_the_example_streams_a_keyword_to_an_early_decision(server):
    done = _run(str(ROOT / "samples" / "yes.wav"), "--url", server.url, "--token", server.token)
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["type"] == "decision" and decision["label"] == "yes" and decision["early"] is True


def test_the_example_gets_an_answer_at_the_end_of_speech(server, tmp_path):
    """"seven" is no sc12 command, so nothing crosses θ; 300 ms after the word the server answers anyway.
    The word sits in quiet room noise (-60 dBFS), with 1.5 s of it after the word."""
    spoken = tmp_path / "seven.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(spoken), "seven"], check=True, capture_output=True)
    with wave.open(str(spoken), "rb") as src:
        rate, word = src.getframerate(), np.frombuffer(src.readframes(src.getnframes()), "<i2") / 32768.0
    room = lambda seconds: np.random.default_rng(0).standard_normal(int(seconds * rate)) * 1e-3  # noqa: E731
    audio = np.concatenate([room(0.3), word + room(len(word) / rate), room(1.5)])
    padded = tmp_path / "seven-in-a-room.wav"
    with wave.open(str(padded), "wb") as dst:
        dst.setnchannels(1), dst.setsampwidth(2), dst.setframerate(rate)
        dst.writeframes((audio * 32767).astype("<i2").tobytes())
    done = _run(str(padded), "--url", server.url, "--token", server.token, "--endpoint-ms", "300")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["early"] is False and decision["endpointed"] is True
    total_ms = 1000 * len(audio) / rate
    assert decision["audio_ms"] < total_ms - 1000  # the server did not wait for the file's end and its stop
    assert "speech ended" in done.stderr


def test_the_example_reports_a_refusal(server):
    done = _run(str(ROOT / "samples" / "yes.wav"), "--url", server.url, "--token", "wrong")
    assert done.returncode == 1
    assert "refused the stream: HTTP 401" in done.stderr and "Traceback" not in done.stderr


def test_the_example_says_when_nothing_listens():
    done = _run(str(ROOT / "samples" / "yes.wav"), "--url", "ws://127.0.0.1:9/v1/stream")
    assert done.returncode == 1 and done.stderr.startswith("error: ws://127.0.0.1:9/v1/stream")
    assert "Traceback" not in done.stderr
