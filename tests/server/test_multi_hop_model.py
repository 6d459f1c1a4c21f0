"""A `--graph multi-hop` model serves exactly what the bundled fused graph serves, streamed or classified."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf

from server_harness import pcm_s16, start_message, stream_audio


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _long_clip(yes16k: np.ndarray) -> np.ndarray:
    """Over a second of quiet noise before the word, so /v1/classify needs more than one block of 100 hops."""
    noise = np.random.default_rng(5).normal(0, 0.01, 21000).astype(np.float32)
    return np.concatenate([noise, yes16k])


@pytest.mark.parametrize("threshold", [None, "1.0", "0.5"])
def test_classify_agrees_with_the_fused_graph(threshold, server, multi_hop_server, yes16k):
    body = _wav(_long_clip(yes16k))
    path = "/v1/classify?trace=true" + (f"&threshold={threshold}" if threshold else "")
    (s1, fused), (s2, multi) = server.post(path, body), multi_hop_server.post(path, body)
    assert s1 == s2 == 200
    fused, multi = json.loads(fused), json.loads(multi)
    for key in ("label", "frame", "early", "audio_ms", "clip_ms"):
        assert multi[key] == fused[key], key
    assert multi["score"] == pytest.approx(fused["score"], abs=1e-5)
    assert [t["frame"] for t in multi["trace"]] == [t["frame"] for t in fused["trace"]]
    for a, b in zip(multi["trace"], fused["trace"]):
        assert a["firing_score"] == pytest.approx(b["firing_score"], abs=1e-5)
    if threshold == "1.0":
        assert multi["early"] is False and multi["frame"] > 100  # the whole clip, over several blocks


def test_streaming_agrees_with_the_fused_graph(server, multi_hop_server, yes16k):
    clip = pcm_s16(_long_clip(yes16k))
    for theta in (0.5, 1.0):
        fused = asyncio.run(stream_audio(server.ws_url, clip, start=start_message(threshold=theta)))
        multi = asyncio.run(stream_audio(multi_hop_server.ws_url, clip, start=start_message(threshold=theta)))
        assert multi.close_code == fused.close_code == 1000
        for key in ("label", "frame", "early", "audio_ms"):
            assert multi.decision[key] == fused.decision[key], key
        assert multi.decision["score"] == pytest.approx(fused.decision["score"], abs=1e-5)


def test_partial_scores_come_at_the_same_frames_with_the_same_values(server, multi_hop_server, yes16k):
    clip = pcm_s16(_long_clip(yes16k))
    start = start_message(threshold=1.0, partials=True)
    fused = asyncio.run(stream_audio(server.ws_url, clip, start=start, chunk_bytes=3200 * 3))
    multi = asyncio.run(stream_audio(multi_hop_server.ws_url, clip, start=start, chunk_bytes=3200 * 3))
    assert len(multi.scores) == len(fused.scores) > 10
    for a, b in zip(multi.scores, fused.scores):
        assert a["audio_ms"] == b["audio_ms"]
        assert max(abs(a["scores"][label] - b["scores"][label]) for label in b["scores"]) < 1e-5
    assert multi.decision["frame"] == fused.decision["frame"]
