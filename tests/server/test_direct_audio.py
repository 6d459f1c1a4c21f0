"""Binary audio taking the direct path (server/direct_audio.py) or ASGI: same results, nothing lost.

The direct path hands each binary message to the session from the protocol's `data_received` and
applies backpressure by pausing the socket; the ASGI path (any other websocket implementation)
awaits room in the handler. A buffer far smaller than one message forces both to wait on every
message of a burst; the decision must still cover every frame with the same scores.
"""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import websockets

from firstspike.server.direct_audio import DirectAudioProtocol
from server_harness import pcm_s16, running_server, start_message, stream_audio

SECONDS = 3.0


@pytest.fixture(scope="module")
def burst(yes16k) -> bytes:
    """The word in 3 s of quiet noise, sent as fast as the socket takes it."""
    rng = np.random.default_rng(3)
    audio = rng.normal(0, 0.01, int(SECONDS * 16000)).astype(np.float32)
    audio[8000 : 8000 + len(yes16k)] += yes16k
    return pcm_s16(audio)


def _late_decision(url: str, audio: bytes, chunk_bytes: int) -> dict:
    result = asyncio.run(stream_audio(url, audio, start=start_message(threshold=1.0), chunk_bytes=chunk_bytes))
    assert result.close_code == 1000, result.messages
    return result.decision


def test_stream_endpoint_takes_audio_on_the_direct_path(server, burst):
    """Every binary message reaches the session through the protocol's callback, none through ASGI."""

    async def open_stream():
        async with websockets.connect(server.ws_url, compression=None) as ws:
            await ws.send(start_message(threshold=1.0))
            assert json.loads(await ws.recv())["type"] == "ready"
            for _ in range(100):  # the handler attaches right after sending ready; audio before that goes via ASGI
                attached = [c for c in server.server.server_state.connections
                            if isinstance(c, DirectAudioProtocol) and c.on_audio is not None]
                if attached:
                    break
                await asyncio.sleep(0.01)
            assert len(attached) == 1
            protocol = attached[0]
            taken: list[int] = []
            on_audio = protocol.on_audio

            def counting(data: bytes) -> None:
                taken.append(len(data))
                on_audio(data)

            protocol.on_audio = counting
            for offset in range(0, 5 * 3200, 3200):
                await ws.send(burst[offset : offset + 3200])
            await ws.send(json.dumps({"type": "stop"}))
            decision = json.loads(await ws.recv())
            # The close handshake may have queued a disconnect event by now; no audio may be queued.
            queued_audio = [m for m in list(protocol.queue._queue) if "bytes" in m]
            return taken, decision, queued_audio

    taken, decision, queued_audio = asyncio.run(open_stream())
    assert taken == [3200] * 5
    assert decision["type"] == "decision" and decision["frame"] == 50  # all 0.5 s reached the model
    assert queued_audio == []


@pytest.mark.parametrize("ws_impl", ["direct", "websockets-sansio"])
def test_a_burst_into_a_tiny_buffer_loses_no_audio(server, burst, ws_impl):
    reference = _late_decision(server.ws_url, burst, chunk_bytes=3200)
    assert reference["frame"] == int(SECONDS * 100)

    options = {} if ws_impl == "direct" else {"ws": ws_impl}
    # 0.02 s of buffer: each 100 ms message waits for the model five times over.
    with running_server(options, buffer_seconds=0.02) as tight:
        for chunk_bytes in (3200, 3202, 777):
            decision = _late_decision(tight.ws_url, burst, chunk_bytes=chunk_bytes)
            assert (decision["label"], decision["frame"], decision["early"]) == (
                reference["label"], reference["frame"], False)
            assert decision["score"] == pytest.approx(reference["score"], abs=1e-5)
        assert tight.wait_sessions_zero() == 0.0
