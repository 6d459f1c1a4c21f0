"""`"endpoint_ms"`: the server ends a stream once its speech is followed by that much quiet.

θ = 1 keeps the bundled model from firing, so every decision here is the late one the end of speech
asks for. The speech is espeak-ng's "yes" over quiet room noise.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from firstspike import protocol
from server_harness import at_rate, converse, pcm_s16, start_message, stream_audio

RATE = 16000


def run(coro):
    return asyncio.run(coro)


def _room(seconds: float, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 1e-3).astype(np.float32)  # -60 dBFS


@pytest.fixture(scope="module")
def said_yes(yes16k) -> tuple[np.ndarray, float]:
    """0.5 s of room, "yes", 3 s of room; and where the word ends (s)."""
    voiced = np.flatnonzero(np.abs(yes16k) > 0.01)
    word = yes16k[: voiced[-1] + 1]
    audio = np.concatenate([_room(0.5, 0), word + _room(len(word) / RATE, 1), _room(3.0, 2)])
    return audio, 0.5 + len(word) / RATE


def _endpointed_decisions(server) -> float:
    _, text = server.get("/metrics")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
               if line.startswith("firstspike_decisions_total{") and 'endpointed="true"' in line)


def test_the_end_of_speech_decides_without_a_stop(server, said_yes):
    audio, word_end_s = said_yes
    counted = _endpointed_decisions(server)
    result = run(stream_audio(server.ws_url, pcm_s16(audio), stop=False, realtime_s=0.002,
                              start=start_message(threshold=1.0, endpoint_ms=300)))
    assert result.ready["endpoint_ms"] == 300
    assert result.error is None and result.close_code == protocol.CLOSE_NORMAL
    decision = result.decision
    assert decision["early"] is False and decision["endpointed"] is True
    # 300 ms after the word, within the 100 ms chunk that held the end of the quiet (and a frame's padding)
    assert word_end_s + 0.3 <= decision["audio_ms"] / 1000 <= word_end_s + 0.3 + 0.1 + 0.03
    assert decision["audio_ms"] / 1000 < len(audio) / RATE - 2
    assert _endpointed_decisions(server) == counted + 1


def test_audio_that_arrives_with_the_end_of_speech_is_not_taken(server, said_yes):
    """Unpaced, many messages reach the server in one socket read: the ones after the message that ended
    the speech must be dropped right away, not taken before the stop has begun."""
    audio, word_end_s = said_yes

    async def burst():
        return await asyncio.gather(*[
            stream_audio(server.ws_url, pcm_s16(audio), chunk_bytes=320, stop=False,
                         start=start_message(threshold=1.0, endpoint_ms=300))
            for _ in range(4)
        ])

    for result in run(burst()):
        decision = result.decision
        assert decision["endpointed"] is True
        assert word_end_s + 0.3 <= decision["audio_ms"] / 1000 <= word_end_s + 0.3 + 0.01 + 0.03


def test_the_end_of_speech_is_found_in_48_khz_stereo_float_audio(server, said_yes):
    """The detector runs on what the model hears: resampled to 16 kHz and downmixed."""
    audio, word_end_s = said_yes
    stereo = np.repeat(at_rate(audio, RATE, 48000)[:, None], 2, axis=1).astype("<f4")
    result = run(stream_audio(server.ws_url, stereo.tobytes(), chunk_bytes=48000 // 10 * 8, stop=False,
                              start=start_message(rate=48000, encoding="pcm_f32le", channels=2, threshold=1.0,
                                                  endpoint_ms=300)))
    decision = result.decision
    assert decision["endpointed"] is True and decision["early"] is False
    assert word_end_s + 0.3 <= decision["audio_ms"] / 1000 <= word_end_s + 0.3 + 0.1 + 0.05


def test_the_answer_is_what_a_stop_at_that_point_gives(server, said_yes):
    audio, _ = said_yes
    ended = run(stream_audio(server.ws_url, pcm_s16(audio), stop=False,
                             start=start_message(threshold=1.0, endpoint_ms=300))).decision
    cut = ended["frame"] * 160
    stopped = run(stream_audio(server.ws_url, pcm_s16(audio[:cut]), start=start_message(threshold=1.0))).decision
    assert (stopped["label"], stopped["frame"]) == (ended["label"], ended["frame"])
    assert stopped["score"] == pytest.approx(ended["score"], abs=1e-6)
    assert "endpointed" not in stopped  # only sessions that ask for endpointing hear of it


def test_audio_and_a_stop_after_the_end_of_speech_are_no_error(server, said_yes):
    audio, _ = said_yes
    pcm = pcm_s16(audio)
    chunks = [pcm[i: i + 3200] for i in range(0, len(pcm), 3200)]
    result = run(converse(server.ws_url, [start_message(threshold=1.0, endpoint_ms=300), *chunks,
                                          json.dumps({"type": "stop"})]))
    assert result.error is None and result.close_code == protocol.CLOSE_NORMAL
    assert result.decision["endpointed"] is True
    assert server.wait_sessions_zero() == 0


def test_a_keyword_that_fires_first_is_an_early_decision(server, said_yes):
    audio, word_end_s = said_yes
    decision = run(stream_audio(server.ws_url, pcm_s16(audio), stop=False,
                                start=start_message(endpoint_ms=300))).decision
    assert decision["early"] is True and decision["endpointed"] is False and decision["label"] == "yes"
    assert decision["audio_ms"] / 1000 < word_end_s + 0.3


def test_without_speech_the_stream_waits_for_stop(server):
    audio = np.concatenate([np.zeros(800, np.float32), _room(1.5, 3)])  # a device's first zeros, then the room
    result = run(stream_audio(server.ws_url, pcm_s16(audio), start=start_message(threshold=1.0, endpoint_ms=100)))
    decision = result.decision
    assert decision["early"] is False and decision["endpointed"] is False
    assert decision["frame"] == -(-len(audio) // 160)  # decided at the client's stop, on all the audio


def test_an_odd_byte_count_at_the_end_of_speech_is_no_error(server, said_yes):
    """The server ends the stream in the middle of the client's audio, maybe inside a sample."""
    audio, _ = said_yes
    result = run(stream_audio(server.ws_url, pcm_s16(audio), chunk_bytes=3201, stop=False,
                              start=start_message(threshold=1.0, endpoint_ms=300)))
    assert result.error is None and result.decision["endpointed"] is True


@pytest.mark.parametrize("value", ["300", True, 0, 5, 20_000, -1, [300]])
def test_a_bad_endpoint_ms_is_refused(server, value):
    result = run(converse(server.ws_url, [start_message(endpoint_ms=value)]))
    assert result.error["code"] == protocol.ERR_BAD_START and "endpoint_ms" in result.error["message"]
    assert result.close_code == protocol.CLOSE_UNSUPPORTED
