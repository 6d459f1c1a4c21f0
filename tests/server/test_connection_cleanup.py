"""An ended connection is freed by reference counting alone, never left for a full garbage collection.

Each websocket connection that ended in a reference cycle waited for CPython's oldest-generation
collection. At 1000 streams that collection came about once a minute and stopped the whole server
for 0.7-0.9 s while it freed some 8,000 connections: every stream fell behind at once
(docs/benchmarks.md, *Full collections at 1000 streams*). The test turns the collector off, ends
connections every way a session can end, and checks that the server's protocol objects are gone.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import weakref

import numpy as np
import websockets

from firstspike.server.direct_audio import DirectAudioProtocol
from server_harness import pcm_s16, read_until_closed, start_message, StreamResult


def _open_protocols(server) -> list[weakref.ref]:
    return [weakref.ref(c) for c in list(server.server.server_state.connections) if isinstance(c, DirectAudioProtocol)]


async def _session(server, ending: str, yes_audio: bytes, refs: list[weakref.ref]) -> StreamResult:
    result = StreamResult()
    async with websockets.connect(server.ws_url, max_size=None, compression=None) as ws:
        refs.extend(_open_protocols(server))
        if ending == "bad start":
            await ws.send(json.dumps({"type": "start", "sample_rate": 12345}))
            return await read_until_closed(ws, result)
        await ws.send(start_message(threshold=0.5 if ending == "decision" else 1.0))
        result.ready = json.loads(await ws.recv())
        audio = yes_audio if ending == "decision" else pcm_s16(np.zeros(8000, np.float32))
        for offset in range(0, len(audio), 3200):
            await ws.send(audio[offset: offset + 3200])
        if ending == "vanish":
            ws.transport.abort()  # no close handshake: the server sees the socket drop
            return result
        if ending == "stop":
            await ws.send(json.dumps({"type": "stop"}))
        return await read_until_closed(ws, result)


def test_ended_connections_are_freed_without_the_garbage_collector(server, yes16k):
    yes_audio = pcm_s16(np.concatenate([np.zeros(4000, np.float32), yes16k, np.zeros(8000, np.float32)]))
    refs: list[weakref.ref] = []
    gc.collect()
    gc.disable()
    try:
        results = {}
        for ending in ("decision", "stop", "vanish", "bad start"):
            results[ending] = asyncio.run(_session(server, ending, yes_audio, refs))
        assert results["decision"].decision["early"] is True and results["decision"].close_code == 1000
        assert results["stop"].decision["early"] is False and results["stop"].close_code == 1000
        assert results["bad start"].close_code == 1003
        assert server.wait_sessions_zero() == 0.0
        assert len(refs) >= 4  # each session's own protocol was seen while it was open
        deadline = time.monotonic() + 5.0
        while any(ref() is not None for ref in refs) and time.monotonic() < deadline:
            time.sleep(0.02)  # the handler's task lets go of its scope once it has finished
        alive = [ref() for ref in refs if ref() is not None]
        assert alive == [], f"{len(alive)} ended connections still held, awaiting a full collection"
    finally:
        gc.enable()
