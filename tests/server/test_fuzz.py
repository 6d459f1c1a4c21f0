"""Property-based fuzzing of message sequences: never a crash, always a defined close, no leaked session."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firstspike import protocol
from server_harness import StreamResult, read_until_closed

import websockets

DEFINED = {protocol.CLOSE_NORMAL, protocol.CLOSE_UNSUPPORTED, protocol.CLOSE_POLICY, protocol.CLOSE_TOO_BIG,
           protocol.CLOSE_OVERLOADED, protocol.CLOSE_PROTOCOL, protocol.CLOSE_TIMEOUT}

starts = st.fixed_dictionaries(
    {"type": st.sampled_from(["start", "start", "start", "stop", "bogus"])},
    optional={
        "sample_rate": st.sampled_from([8000, 16000, 22050, 44100, 48000, 11025, 0, -1, "16000", None]),
        "encoding": st.sampled_from(["pcm_s16le", "pcm_f32le", "mp3", "", None]),
        "channels": st.sampled_from([1, 2, 0, 3, True]),
        "threshold": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(1.0)),
        "partials": st.sampled_from([True, False, "x"]),
        "model": st.sampled_from([None, "nope", 3]),
        "endpoint_ms": st.sampled_from([None, 10, 100, 300, 0, "300", True, 1e9]),
    },
).map(json.dumps)

_rng = np.random.default_rng(0)
_speech_then_quiet = np.concatenate([  # at 16 kHz f32: enough for the end-of-speech detector to fire
    _rng.standard_normal(1600) * 1e-3, np.sin(np.arange(1600) / 5.0) * 0.3, _rng.standard_normal(6400) * 1e-3,
]).astype("<f4").tobytes()

audio = st.one_of(
    st.binary(min_size=0, max_size=4000),
    st.just(_speech_then_quiet),
    st.integers(1, 4000).map(lambda n: (np.sin(np.arange(n) / 9.0) * 0.4).astype("<f4").tobytes()),
    st.just(np.array([np.nan] * 8, "<f4").tobytes()),
)
texts = st.one_of(
    st.just(json.dumps({"type": "stop"})),
    st.just(json.dumps({"type": "stop"})),
    starts,
    st.text(max_size=40),
    st.just("{}"),
    st.just("null"),
)
actions = st.lists(st.one_of(audio, texts, st.just("<close>")), min_size=0, max_size=12)


async def _play(url: str, first: str, sequence: list) -> StreamResult:
    result = StreamResult()
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        reader = asyncio.ensure_future(read_until_closed(ws, result, timeout=8.0))
        try:
            await ws.send(first)
            for item in sequence:
                if item == "<close>":
                    await ws.close()
                    break
                await ws.send(item)
            else:
                await ws.send(json.dumps({"type": "stop"}))
        except websockets.ConnectionClosed:
            pass
        return await reader


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(first=st.one_of(starts, texts, audio), sequence=actions)
def test_any_message_sequence_ends_cleanly(server, first, sequence):
    result = asyncio.run(_play(server.ws_url, first, sequence))
    client_closed = "<close>" in sequence
    if not client_closed:
        assert result.close_code in DEFINED, (result.close_code, result.messages[-1:])
        last = result.messages[-1] if result.messages else None
        if result.close_code == protocol.CLOSE_NORMAL:
            assert last and last["type"] == "decision"
        else:
            assert last and last["type"] == "error" and protocol.ERROR_CLOSE_CODES[last["code"]] == result.close_code
    assert all(m.get("type") != "error" or m["code"] != protocol.ERR_INTERNAL for m in result.messages)
    assert server.wait_sessions_zero() == 0
