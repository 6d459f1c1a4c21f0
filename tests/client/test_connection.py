"""The audio send path of `run_session`: the short path writes real frames, and steps aside when unsafe."""

from __future__ import annotations

import asyncio
import json

from firstspike.client.connection import _send_now


def test_short_path_declines_objects_it_does_not_know():
    assert _send_now(object(), b"\x00\x00") is False


def test_short_path_sends_frames_the_server_decodes_and_steps_aside_once_closed(server):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    reached = ["connecting"]  # the last step taken: what a timeout reports

    async def scenario():
        async with connect(server.url, additional_headers={"Authorization": f"Bearer {server.token}"}) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "threshold": 1.0}))
            assert json.loads(await ws.recv())["type"] == "ready"
            reached.append("sending audio")
            sent = [_send_now(ws, b"\x01\x00" * 1600) for _ in range(5)]  # 0.5 s of audio, frame by frame
            await ws.send(json.dumps({"type": "stop"}))
            reached.append("stop sent, awaiting the decision")
            decision = json.loads(await ws.recv())
            reached.append("decision received, awaiting the close")
            try:
                await ws.recv()
            except ConnectionClosed:
                pass
            return sent, decision, _send_now(ws, b"\x01\x00")

    async def bounded():
        try:
            return await asyncio.wait_for(scenario(), 30)
        except asyncio.TimeoutError:
            raise AssertionError(f"no progress for 30 s at: {reached[-1]}") from None

    sent, decision, after_close = asyncio.run(bounded())
    assert sent == [True] * 5
    assert decision["type"] == "decision" and decision["frame"] == 50  # every sample arrived and was stepped
    assert after_close is False
