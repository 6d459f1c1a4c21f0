"""Batching must not change results, and no stream's state leaks into another's."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest
import soundfile as sf

from server_harness import at_rate
from server_harness import pcm_s16, start_message, stream_audio

NEIGHBOURS = 100


def _early_threshold(server, audio: np.ndarray) -> float:
    """A θ the served model first crosses mid-clip, with a clear margin below it on every earlier frame.

    Among the frames of the clip's middle half where the firing score reaches a new high, take the one
    with the largest rise over every frame before it; θ is halfway up that rise.
    """
    buffer = io.BytesIO()
    sf.write(buffer, audio, 16000, format="WAV", subtype="FLOAT")
    status, body = server.post("/v1/classify?threshold=1.0&trace=true", buffer.getvalue())
    assert status == 200
    firing = np.array([frame["firing_score"] for frame in json.loads(body)["trace"]])
    before = np.maximum.accumulate(np.concatenate([[-np.inf], firing[:-1]]))  # highest score before each frame
    rise = firing - before
    middle = np.arange(len(firing) // 4, 3 * len(firing) // 4)
    frame = middle[np.argmax(rise[middle])]
    assert rise[frame] > 0.01, "the clip's firing score never rises to a clear new high in its middle half"
    return float((firing[frame] + before[frame]) / 2)


def _run_many(url: str, clips: list[bytes], thresholds: list[float]):
    async def all_at_once():
        return await asyncio.gather(*[
            stream_audio(url, clip, start=start_message(threshold=theta), chunk_bytes=3200, realtime_s=0.01)
            for clip, theta in zip(clips, thresholds)
        ])

    return asyncio.run(all_at_once())


@pytest.mark.parametrize("served", ["server", "process_server", "int8_server", "multi_hop_server"])
def test_same_decision_alone_and_among_a_hundred_streams(served, request, speech, yes16k):
    """Also with the model calls in a model process (`--step-in process`), for a `--quantize` model,
    whose integer DFT and int8 gates are exact row by row (fixed scales, integer products; see
    docs/onnx-contract.md), and for a multi-hop model, whose calls cover as many hops as the tick's
    rows share."""
    server = request.getfixturevalue(served)
    theta = _early_threshold(server, yes16k)
    target = pcm_s16(yes16k)
    alone_early = asyncio.run(stream_audio(server.ws_url, target, start=start_message(threshold=theta)))
    alone_late = asyncio.run(stream_audio(server.ws_url, target, start=start_message(threshold=1.0)))
    assert alone_early.decision["early"] is True
    assert alone_late.decision["early"] is False

    rng = np.random.default_rng(7)
    others = []
    for i in range(NEIGHBOURS):
        samples, rate = speech[["no", "stop", "left", "yes"][i % 4]]
        clip = at_rate(samples, rate, 16000) * rng.uniform(0.3, 1.0)
        others.append(pcm_s16(np.concatenate([rng.normal(0, 0.02, rng.integers(0, 4000)).astype(np.float32), clip])))
    clips = [target, target] + others
    thresholds = [theta, 1.0] + [1.0 if rng.uniform() < 0.5 else theta for _ in others]
    results = _run_many(server.ws_url, clips, thresholds)

    for alone, batched in ((alone_early, results[0]), (alone_late, results[1])):
        assert batched.close_code == 1000
        for key in ("label", "frame", "early", "audio_ms"):
            assert batched.decision[key] == alone.decision[key], key
        assert batched.decision["score"] == pytest.approx(alone.decision["score"], abs=2e-6)
    assert all(r.close_code == 1000 and r.decision for r in results)
    assert server.metric("firstspike_batch_size_sum") / server.metric("firstspike_batch_size_count") > 1.0
    # A tick holds its model calls: at least one call per tick, and never less time than its calls took.
    assert 0 < server.metric("firstspike_tick_seconds_count") <= server.metric("firstspike_step_seconds_count")
    assert server.metric("firstspike_tick_seconds_sum") >= server.metric("firstspike_step_seconds_sum")
    assert server.wait_sessions_zero() == 0


def test_successive_streams_start_from_a_clean_state(server, speech, yes16k):
    """A slot reused after another stream must not remember that stream's audio."""
    first = asyncio.run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=1.0)))
    loud = np.random.default_rng(0).uniform(-1, 1, 16000).astype(np.float32)
    asyncio.run(stream_audio(server.ws_url, pcm_s16(loud), start=start_message(threshold=1.0)))
    again = asyncio.run(stream_audio(server.ws_url, pcm_s16(yes16k), start=start_message(threshold=1.0)))
    assert again.decision["label"] == first.decision["label"]
    assert again.decision["frame"] == first.decision["frame"]
    assert again.decision["score"] == first.decision["score"]


def test_streams_under_load_share_ticks_but_a_lone_or_first_chunk_never_waits():
    """max_wait paces ticks: chunks arriving within it share one model call, yet a lone stream, and
    the first chunk after a quiet spell, start at once (margins are wide: this is not a timing test)."""
    from server_harness import running_server

    with running_server(max_wait_ms=400.0) as paced:
        chunk = pcm_s16(np.full(1600, 0.01, np.float32))

        async def lone():
            began = asyncio.get_running_loop().time()
            result = await stream_audio(paced.ws_url, chunk, start=start_message(threshold=1.0))
            return result, asyncio.get_running_loop().time() - began

        result, took = asyncio.run(lone())
        assert result.decision is not None and took < 0.3

        async def crowd():
            # Eight streams are attached; their chunks land within 80 ms, well inside one 400 ms period.
            return await asyncio.gather(*[
                stream_audio(paced.ws_url, chunk, start=start_message(threshold=1.0), realtime_s=0.01 * i)
                for i in range(8)
            ])

        calls_before = paced.metric("firstspike_batch_size_count")
        results = asyncio.run(crowd())
        assert all(r.decision is not None for r in results)
        calls = paced.metric("firstspike_batch_size_count") - calls_before
        rows = paced.metric("firstspike_batch_size_sum")
        # 8 streams × 10 calls each, in far fewer calls than 80 because they were batched together.
        assert calls <= 40, (calls, rows)
