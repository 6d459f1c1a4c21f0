"""Limits and policy: session cap, API keys, origins, timeouts, stalled and vanished clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import numpy as np
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from firstspike import protocol
from firstspike.server.admission import MIN_CAP
from server_harness import converse, pcm_s16, read_until_closed, running_server, start_message, StreamResult

AUDIO = pcm_s16(np.sin(np.arange(1600) / 5.0) * 0.3)


def test_more_sessions_than_allowed_get_1013_and_the_rest_carry_on():
    async def scenario(url):
        holders = [await websockets.connect(url) for _ in range(3)]
        for ws in holders:
            await ws.send(start_message(threshold=1.0))
            assert json.loads(await ws.recv())["type"] == "ready"
        extra = await converse(url, [start_message()])
        for ws in holders:
            await ws.send(AUDIO)
            await ws.send(json.dumps({"type": "stop"}))
        finished = [await read_until_closed(ws, StreamResult()) for ws in holders]
        return extra, finished

    with running_server(max_sessions=3) as server:
        extra, finished = asyncio.run(scenario(server.ws_url))
        assert extra.error["code"] == protocol.ERR_OVERLOADED and extra.close_code == 1013
        assert [r.close_code for r in finished] == [1000, 1000, 1000]
        assert server.metric('firstspike_sessions_rejected_total') >= 1
        assert server.wait_sessions_zero() == 0


def _wait_for_load(server, above: bool, limit: float, timeout: float = 20.0) -> float:
    """Poll /readyz until the scheduler's load is above (or no longer above) `limit`; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        load = json.loads(server.get("/readyz")[1])["load"]
        if (load > limit) == above or time.monotonic() > deadline:
            return load
        time.sleep(0.02)


def test_past_its_load_limit_the_server_refuses_upgrades_with_503_and_the_open_streams_carry_on():
    """A real load, not a faked one: three seconds of audio keep the scheduler busy for some ms, which
    a tiny `max_load` counts as over the limit until the average has decayed. The server never caps
    below MIN_CAP streams, so that many are open when the next one is refused."""
    limit = 0.002

    async def scenario(url):
        holders = [await websockets.connect(url) for _ in range(MIN_CAP)]
        for ws in holders:
            await ws.send(start_message(threshold=1.0))
            assert json.loads(await ws.recv())["type"] == "ready"
        await holders[0].send(AUDIO * 30)  # 3 s, stepped at once
        load = await asyncio.to_thread(_wait_for_load, server, True, limit)
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url)
        for ws in holders:
            await ws.send(AUDIO)
            await ws.send(json.dumps({"type": "stop"}))
        finished = [await read_until_closed(ws, StreamResult()) for ws in holders]
        return load, refused.value.response, finished

    with running_server(max_load=limit) as server:
        load, response, finished = asyncio.run(scenario(server.ws_url))
        assert load > limit
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        body = json.loads(response.body)
        assert body["code"] == protocol.ERR_OVERLOADED and "capacity" in body["message"]
        assert [r.close_code for r in finished] == [1000] * MIN_CAP and all(r.decision for r in finished)
        assert "firstspike_scheduler_load{" in server.get("/metrics")[1].decode()
        assert server.metric("firstspike_sessions_rejected_total") == 1

        # Idle, the average decays (below the limit by more than /readyz's rounding).
        assert _wait_for_load(server, False, 0.9 * limit) <= 0.9 * limit
        again = asyncio.run(converse(server.ws_url, [start_message(), AUDIO, json.dumps({"type": "stop"})]))
        assert again.decision is not None and again.close_code == 1000
        assert server.wait_sessions_zero() == 0


def test_api_keys_bearer_and_query_token():
    with running_server(api_keys=["k1", "k2"]) as server:
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(converse(server.ws_url, [start_message()]))
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as wrong:
            asyncio.run(converse(server.ws_url + "?token=nope", [start_message()]))
        assert wrong.value.response.status_code == 401
        for kwargs, url in (({"additional_headers": {"Authorization": "Bearer k2"}}, server.ws_url),
                            ({}, server.ws_url + "?token=k1")):
            ok = asyncio.run(converse(url, [start_message(), AUDIO, json.dumps({"type": "stop"})], **kwargs))
            assert ok.decision is not None and ok.close_code == 1000
        assert server.post("/v1/classify", b"")[0] == 401
        assert server.get("/healthz")[0] == 200  # probes need no key


def test_disallowed_origin_gets_1008():
    with running_server(allowed_origins=["https://good.example"]) as server:
        bad = asyncio.run(converse(server.ws_url, [start_message()], origin="https://evil.example"))
        assert bad.error["code"] == protocol.ERR_ORIGIN and bad.close_code == protocol.CLOSE_POLICY
        good = asyncio.run(converse(server.ws_url, [start_message(), AUDIO, json.dumps({"type": "stop"})],
                                    origin="https://good.example"))
        assert good.close_code == 1000


def test_start_timeout_and_idle_timeout_are_4008():
    with running_server(start_timeout_s=0.3, idle_timeout_s=0.4) as server:
        silent = asyncio.run(converse(server.ws_url, []))
        assert silent.error["code"] == protocol.ERR_START_TIMEOUT and silent.close_code == 4008
        began = time.monotonic()
        stalled = asyncio.run(converse(server.ws_url, [start_message(), AUDIO]))  # then says nothing
        assert stalled.error["code"] == protocol.ERR_IDLE_TIMEOUT and stalled.close_code == 4008
        assert 0.3 < time.monotonic() - began < 3.0
        assert server.wait_sessions_zero() == 0


def test_stream_longer_than_the_limit_is_4008():
    with running_server(max_stream_seconds=0.25) as server:
        result = asyncio.run(converse(server.ws_url, [start_message(threshold=1.0)] + [AUDIO] * 4))
        assert result.error["code"] == protocol.ERR_TOO_LONG and result.close_code == 4008


def test_vanished_client_frees_its_session(server):
    """A client whose TCP connection just drops (no close frame) leaves no session behind."""
    async def vanish():
        ws = await websockets.connect(server.ws_url)
        await ws.send(start_message(threshold=1.0))
        await ws.recv()
        await ws.send(AUDIO)
        ws.transport.abort()

    for _ in range(5):
        asyncio.run(vanish())
    assert server.wait_sessions_zero() == 0


def test_client_that_closes_midstream_frees_its_session(server):
    async def leave():
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(start_message(threshold=1.0))
            await ws.recv()
            await ws.send(AUDIO)

    asyncio.run(leave())
    assert server.wait_sessions_zero() == 0


def test_half_open_socket_without_handshake_does_not_block_others(server, yes16k):
    host, port = server.base.removeprefix("http://").split(":")
    raw = socket.create_connection((host, int(port)))
    try:
        raw.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n")  # never finishes the upgrade
        ok = asyncio.run(converse(server.ws_url, [start_message(), pcm_s16(yes16k), json.dumps({"type": "stop"})]))
        assert ok.close_code == 1000
    finally:
        raw.close()


def test_client_not_reading_partials_does_not_stall_others(server, yes16k):
    """A stalled reader with partials on fills its own socket buffer, not the server's loop."""
    async def scenario():
        lazy = await websockets.connect(server.ws_url, max_queue=1)
        await lazy.send(start_message(partials=True, threshold=1.0))
        for _ in range(20):
            await lazy.send(pcm_s16(yes16k))
        ok = await converse(server.ws_url, [start_message(), pcm_s16(yes16k), json.dumps({"type": "stop"})])
        lazy.transport.abort()
        return ok

    assert asyncio.run(scenario()).close_code == 1000
    assert server.wait_sessions_zero() == 0
