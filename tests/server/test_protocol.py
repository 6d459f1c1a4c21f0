"""Protocol v1 conformance against a real server: every message of a normal conversation."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from firstspike import protocol
from server_harness import pcm_s16, start_message, stream_audio


def run(coro):
    return asyncio.run(coro)


def test_ready_message_describes_the_stream(server):
    result = run(stream_audio(server.ws_url, b"", stop=False, timeout=0.5))
    ready = result.ready
    info = next(iter(server.ctx.models.values())).info
    assert ready["type"] == "ready"
    assert len(ready["session_id"]) >= 8
    assert ready["model"] == f"{info.model_name}@{info.model_version}"
    assert ready["labels"] == list(info.labels)
    assert ready["sample_rate"] == 16000 and ready["frame_ms"] == 10
    assert ready["threshold"] == pytest.approx(info.threshold)


def test_stop_gives_a_late_decision_over_all_labels_then_1000(server, yes16k):
    result = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=1.0)))
    decision = result.decision
    assert result.close_code == protocol.CLOSE_NORMAL
    assert decision["early"] is False
    assert decision["label"] in result.ready["labels"]
    frames = -(-len(yes16k) // 160)
    assert decision["frame"] == frames and decision["audio_ms"] == frames * 10
    assert 0.0 < decision["score"] <= 1.0 and decision["processing_ms"] >= 0


def test_partials_come_every_50_ms_of_audio_and_cover_all_labels(server, yes16k):
    result = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(partials=True, threshold=1.0)))
    positions = [s["audio_ms"] for s in result.scores]
    assert positions and positions[0] == 50
    assert all(b - a >= 50 for a, b in zip(positions, positions[1:]))
    assert len(positions) == result.decision["audio_ms"] // 50 - (result.decision["audio_ms"] % 50 == 0)
    for scores in result.scores:
        assert list(scores["scores"]) == result.ready["labels"]
        assert sum(scores["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    # The late decision is the argmax of the last frame's probabilities.
    assert result.decision["label"] in result.ready["labels"]


def test_early_decision_when_a_firing_class_crosses_threshold(server, yes16k):
    probe = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(partials=True, threshold=1.0)))
    firing = set(probe.ready["firing_labels"])
    best = [max(v for k, v in s["scores"].items() if k in firing) for s in probe.scores]
    theta = min(best[:4]) * 0.999  # crossed by frame 5 at the latest
    result = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=theta)))
    decision = result.decision
    assert result.close_code == protocol.CLOSE_NORMAL
    assert decision["early"] is True
    assert decision["label"] in firing
    assert decision["score"] >= round(theta, 6) - 1e-6
    assert decision["audio_ms"] == decision["frame"] * 10 and decision["frame"] <= 20
    assert 0 <= decision["processing_ms"] < 1000


def test_chunking_does_not_change_the_result(server, yes16k):
    audio = pcm_s16(yes16k)
    whole = run(stream_audio(server.ws_url, audio, chunk_bytes=len(audio), start=start_message(threshold=1.0)))
    odd = run(stream_audio(server.ws_url, audio, chunk_bytes=333, start=start_message(threshold=1.0)))
    assert odd.decision["label"] == whole.decision["label"]
    assert odd.decision["frame"] == whole.decision["frame"]
    assert odd.decision["score"] == pytest.approx(whole.decision["score"], abs=1e-6)


def test_stream_decision_matches_classify_endpoint(server, yes16k, wav_file):
    result = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=1.0)))
    status, body = server.post("/v1/classify?threshold=1.0", wav_file.read_bytes())
    assert status == 200
    clip = json.loads(body)
    assert (clip["label"], clip["frame"], clip["early"]) == (
        result.decision["label"], result.decision["frame"], False)
    # the file is resampled in one piece, the stream chunk by chunk: a hair apart, never a different decision
    assert clip["score"] == pytest.approx(result.decision["score"], abs=1e-3)


def test_stereo_and_float_encodings_match_mono_s16(server, yes16k):
    mono = run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=1.0)))
    stereo_pcm = np.repeat(np.frombuffer(pcm_s16(yes16k), "<i2")[:, None], 2, axis=1).tobytes()
    stereo = run(stream_audio(server.ws_url, stereo_pcm, start=start_message(channels=2, threshold=1.0)))
    f32 = (np.frombuffer(pcm_s16(yes16k), "<i2").astype(np.float32) / 32768).astype("<f4").tobytes()
    floats = run(stream_audio(server.ws_url, f32, start=start_message(encoding="pcm_f32le", threshold=1.0)))
    for other in (stereo, floats):
        assert other.decision["label"] == mono.decision["label"]
        assert other.decision["frame"] == mono.decision["frame"]
        assert other.decision["score"] == pytest.approx(mono.decision["score"], abs=1e-6)


def test_model_can_be_chosen_by_name_and_version(server, yes16k):
    full = next(iter(server.ctx.models.values())).full_name
    for name in (full, full.split("@")[0]):
        result = run(stream_audio(server.ws_url, pcm_s16(yes16k[:1600]), start=start_message(model=name)))
        assert result.ready["model"] == full and result.close_code == 1000
