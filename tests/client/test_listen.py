"""`firstspike listen` end to end through PortAudio, with an ALSA file-backed capture device as the mic.

There is no sound card: ALSA's `file` plugin reads raw samples from `infile` as fast as PortAudio asks,
so these tests also check that the client paces what it sends by sample count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _portaudio_or_skip() -> None:
    try:
        import sounddevice  # noqa: F401
    except OSError as err:
        pytest.skip(f"PortAudio is not installed: {err}")


def _fake_mic_home(tmp_path: Path, wav: Path, lead_s: float = 0.5, room_dbfs: float | None = None) -> Path:
    """A HOME whose ~/.asoundrc defines `filemic`: `lead_s` of silence, the word, then 1 s of silence;
    with `room_dbfs`, white noise at that level throughout instead of digital silence."""
    speech, rate = sf.read(str(wav), dtype="float32")
    speech_16k = np.interp(np.arange(0, len(speech), rate / 16000), np.arange(len(speech)), speech)
    samples = np.concatenate([np.zeros(round(16000 * lead_s)), speech_16k, np.zeros(16000)])
    if room_dbfs is not None:
        samples = samples + 10 ** (room_dbfs / 20) * np.random.default_rng(0).standard_normal(len(samples))
    raw = tmp_path / "mic.raw"
    raw.write_bytes((samples * 32767).astype("<i2").tobytes())
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(
        f'pcm.filemic {{\n type file\n slave.pcm null\n file "/dev/null"\n infile "{raw}"\n format raw\n}}\n'
    )
    return home


def _listen(home: Path, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "firstspike.cli", "listen", *argv],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_listen_once_streams_the_capture_device_in_real_time(server, audio, tmp_path):
    _portaudio_or_skip()
    home = _fake_mic_home(tmp_path, audio / "corpus" / "yes" / "yes_0.wav")
    listed = _listen(home, "--list-devices")
    assert listed.returncode == 0 and "filemic" in listed.stdout
    started = time.monotonic()
    done = _listen(home, *server.args(), "--device", "filemic", "--rate", "16000", "--once", "--seconds", "1.2", "--json")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    decision = lines[0]
    assert decision["close_code"] == 1000 and decision["model"]
    assert decision["audio_ms"] <= 1200 + 10
    assert decision["scores_received"] >= 1  # partial scores were asked for and shown
    if not decision["early"]:
        # Paced by sample count: 1.2 s of audio cannot go out faster than 1.2 s.
        assert elapsed >= 1.2
    assert decision["decision_latency_ms"] is not None and decision["decision_latency_ms"] >= 0


def test_listen_answers_once_the_speech_is_over(server, audio, tmp_path):
    """With θ = 1 nothing can spike; with `--endpoint-ms` the server still ends the session soon after the word.

    The file device delivers faster than real time, and `listen` drops what was captured before the session
    opened (at most the microphone queue's 5 s), so the word comes after 6 s of silence to be heard at all.
    """
    _portaudio_or_skip()
    wav = audio / "corpus" / "yes" / "yes_0.wav"
    home = _fake_mic_home(tmp_path, wav, lead_s=6.0, room_dbfs=-60)
    word_s = sf.info(str(wav)).duration
    done = _listen(home, *server.args(), "--device", "filemic", "--rate", "16000", "--once", "--threshold", "1",
                   "--endpoint-ms", "300", "--json")
    assert done.returncode == 0, done.stderr
    (decision,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert decision["early"] is False and decision["close_code"] == 1000 and decision["endpointed"] is True
    # a late answer is a command only from the default 0.8 score up, and never a filler
    expected = None if decision["label"].startswith("_") or decision["score"] < 0.8 else decision["label"]
    assert decision["command"] == expected
    # the session heard some of the lead-in, the word, then 300 ms of quiet (rounded up to 100 ms chunks);
    # the word's own quiet edges make it end a little sooner
    assert 1000 * word_s < decision["audio_ms"] <= 1000 * (6.0 + word_s + 0.3) + 100


def test_listen_refuses_an_endpoint_the_server_would_refuse(server, tmp_path):
    for value in ("5", "20000", "-1"):
        refused = _listen(tmp_path, *server.args(), "--endpoint-ms", value)
        assert refused.returncode == 2 and "--endpoint-ms must be 0 (off) or lie in [10, 10000]" in refused.stderr


def test_listen_explains_a_missing_input_device(server, tmp_path):
    _portaudio_or_skip()
    home = tmp_path / "empty-home"
    home.mkdir()
    (home / ".asoundrc").write_text("pcm.!default { type null }\n")
    missing = _listen(home, *server.args(), "--device", "no-such-mic", "--once")
    assert missing.returncode == 2
    assert "no-such-mic" in missing.stderr or "no audio input device" in missing.stderr
    assert "Traceback" not in missing.stderr
