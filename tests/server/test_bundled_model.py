"""The bundled default model, served for real, hears the keywords in samples/ (held-out voices)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import soundfile as sf

from firstspike import protocol
from server_harness import at_rate, pcm_s16, running_server, start_message, stream_audio

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def stream_sample(server, name: str, rate: int = 16000, **start):
    audio, native = sf.read(SAMPLES / name, dtype="float32")
    audio = at_rate(audio, native, rate)
    return asyncio.run(stream_audio(server.ws_url, pcm_s16(audio), start=start_message(rate=rate, **start))), len(audio) / rate


@pytest.mark.parametrize("word", ["yes", "no", "stop", "left"])
def test_keyword_fires_early_with_its_label(server, word):
    result, seconds = stream_sample(server, f"{word}.wav")
    decision = result.decision
    assert result.close_code == protocol.CLOSE_NORMAL
    assert decision["early"] is True and decision["label"] == word
    assert decision["score"] >= result.ready["threshold"]
    assert decision["audio_ms"] < seconds * 1000


def test_keyword_after_seconds_of_other_speech_fires_on_the_keyword_only(server):
    result, _ = stream_sample(server, "stream-yes.wav")
    decision = result.decision
    assert decision["early"] is True and decision["label"] == "yes"
    assert decision["audio_ms"] >= 4440  # the keyword's onset in this clip (samples/README.md)


def test_other_word_never_fires_and_stop_says_unknown(server):
    result, seconds = stream_sample(server, "unknown-zero.wav")
    decision = result.decision
    assert decision["early"] is False and decision["label"] == "_unknown_"


@pytest.mark.parametrize("rate", [8000, 48000])
def test_keyword_at_other_sample_rates(server, rate):
    result, _ = stream_sample(server, "yes.wav", rate=rate)
    assert result.decision["early"] is True and result.decision["label"] == "yes"


def test_classify_endpoint_on_a_sample_file(server):
    status, body = server.post("/v1/classify", (SAMPLES / "stop.wav").read_bytes(), {"Content-Type": "audio/wav"})
    assert status == 200
    decision = json.loads(body)
    assert decision["label"] == "stop" and decision["early"] is True


@pytest.fixture(scope="module")
def int8_and_exact_server():
    """`--model bundled-int8 --model exact=bundled`: the shipped int8 variant first (the default), the float one beside it."""
    with running_server(models=["bundled-int8", "exact=bundled"]) as srv:
        yield srv


@pytest.mark.parametrize("word", ["yes", "no", "stop", "left", "stream-yes"])
def test_the_bundled_int8_model_gives_the_float_models_decisions_on_the_samples(int8_and_exact_server, word):
    int8, _ = stream_sample(int8_and_exact_server, f"{word}.wav")
    exact, _ = stream_sample(int8_and_exact_server, f"{word}.wav", model="exact")
    assert int8.ready["model"] == "firstspike-sc12@1.2.0+int8" and exact.ready["model"] == "exact@1.2.0"
    label = word.removeprefix("stream-")
    assert int8.decision["early"] is True and int8.decision["label"] == exact.decision["label"] == label
    assert abs(int8.decision["frame"] - exact.decision["frame"]) <= 2


def test_models_lists_which_arithmetic_each_bundled_model_runs(int8_and_exact_server):
    status, body = int8_and_exact_server.get("/v1/models")
    graphs = {m["name"]: (m["graph"], m["default"]) for m in json.loads(body)["models"]}
    assert status == 200 and graphs == {"firstspike-sc12": ("fused+int8", True), "exact": ("fused", False)}
