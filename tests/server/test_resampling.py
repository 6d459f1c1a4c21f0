"""Audio at any supported rate reaches the model as (nearly) the same 16 kHz signal."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from server_harness import at_rate
from server_harness import pcm_s16, start_message, stream_audio


def _trajectory(server, samples: np.ndarray, rate: int, chunk_ms: int = 100):
    chunk_bytes = 2 * rate * chunk_ms // 1000
    result = asyncio.run(stream_audio(
        server.ws_url, pcm_s16(samples), chunk_bytes=chunk_bytes,
        start=start_message(rate=rate, partials=True, threshold=1.0)))
    assert result.close_code == 1000, result.messages[-1:]
    labels = result.ready["labels"]
    return result.decision, {s["audio_ms"]: np.array([s["scores"][l] for l in labels]) for s in result.scores}


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_give_the_same_decision_as_16k(server, speech, rate):
    samples, native = speech["yes"]
    ref_decision, ref = _trajectory(server, at_rate(samples, native, 16000), 16000)
    decision, other = _trajectory(server, at_rate(samples, native, rate), rate)
    # 8 kHz audio has nothing above 4 kHz, so the model's upper mel bands see silence there: the same
    # word, but not the same confidence. Every rate at or above 16 kHz carries the whole band.
    score_tol, trajectory_tol = (0.15, 0.25) if rate == 8000 else (0.01, 0.02)
    assert decision["label"] == ref_decision["label"]
    assert abs(decision["frame"] - ref_decision["frame"]) <= 1
    assert decision["score"] == pytest.approx(ref_decision["score"], abs=score_tol)
    common = sorted(set(ref) & set(other))
    assert len(common) >= len(ref) - 1
    worst = max(float(np.abs(ref[t] - other[t]).max()) for t in common)
    assert worst < trajectory_tol, f"scores differ by up to {worst:.4f} at {rate} Hz"


def test_resampler_keeps_state_across_chunks(server, speech):
    """Tiny and odd-sized chunks at 44.1 kHz give exactly what one big chunk gives."""
    samples, native = speech["stop"]
    audio = pcm_s16(at_rate(samples, native, 44100))
    start = start_message(rate=44100, threshold=1.0)
    whole = asyncio.run(stream_audio(server.ws_url, audio, chunk_bytes=len(audio), start=start))
    small = asyncio.run(stream_audio(server.ws_url, audio, chunk_bytes=882 + 1, start=start))
    assert (small.decision["label"], small.decision["frame"]) == (whole.decision["label"], whole.decision["frame"])
    assert small.decision["score"] == pytest.approx(whole.decision["score"], abs=1e-6)
