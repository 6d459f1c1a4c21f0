"""The direct path's own frame splitting (server/direct_audio.py), driven byte by byte from a raw socket.

A real client hands the socket whole frames, but TCP may deliver them in any pieces: a header split
from its payload, several frames in one read, a frame cut one byte at a time. Whatever the pieces,
the decision must be the one a plain client gets, every unfragmented binary frame must bypass
websockets' parser, and everything else (pings, fragments, text, malformed or oversized frames) must
reach websockets whole and be judged by it as before.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct

import numpy as np
import pytest
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.protocol import Protocol, Side
from websockets.uri import parse_uri

from firstspike.server.direct_audio import frame_extent
from server_harness import pcm_s16, start_message, stream_audio

CHUNK = 3200  # 100 ms of 16 kHz s16 mono


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv1: bool = False) -> bytes:
    """One client frame, built by hand so that tests can also build wrong ones."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes([first, (0x80 if masked else 0) | n])
    elif n < 1 << 16:
        header = bytes([first, (0x80 if masked else 0) | 126]) + struct.pack("!H", n)
    else:
        header = bytes([first, (0x80 if masked else 0) | 127]) + struct.pack("!Q", n)
    if not masked:
        return header + payload
    mask = os.urandom(4)
    body = (np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n)).tobytes()
    return header + mask + body


def text(message: dict) -> bytes:
    return frame(0x1, json.dumps(message).encode())


class RawClient:
    """A websocket client whose writes are exactly the bytes a test chooses."""

    def __init__(self, url: str):
        self._url = url
        self._protocol = ClientProtocol(parse_uri(url))
        self.messages: list[dict] = []
        self.pongs = 0
        self.close_code: int | None = None

    async def __aenter__(self) -> "RawClient":
        uri = parse_uri(self._url)
        self._reader, self._writer = await asyncio.open_connection(uri.host, uri.port)
        self._protocol.send_request(self._protocol.connect())
        self._writer.write(b"".join(self._protocol.data_to_send()))
        while self._protocol.handshake_exc is None and self._protocol.state.name == "CONNECTING":
            self._protocol.receive_data(await self._reader.read(65536))
        assert self._protocol.handshake_exc is None, self._protocol.handshake_exc
        self._take_events()
        return self

    async def __aexit__(self, *exc) -> None:
        self._writer.close()

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def next_message(self, timeout: float = 10.0) -> dict:
        while not self.messages:
            await self._read(timeout)
        return self.messages.pop(0)

    async def until_closed(self, timeout: float = 10.0) -> int | None:
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                if not await self._read(timeout):
                    break
        return self.close_code

    async def _read(self, timeout: float) -> bool:
        data = await asyncio.wait_for(self._reader.read(65536), timeout)
        if not data:
            self._protocol.receive_eof()
            return False
        self._protocol.receive_data(data)
        self._take_events()
        return True

    def _take_events(self) -> None:
        for event in self._protocol.events_received():
            if not hasattr(event, "opcode"):  # the handshake's response
                continue
            if event.opcode.name == "TEXT":
                self.messages.append(json.loads(event.data))
            elif event.opcode.name == "PONG":
                self.pongs += 1
            elif event.opcode.name == "CLOSE":
                self.close_code = Close.parse(event.data).code


@pytest.fixture(scope="module")
def audio(yes16k) -> bytes:
    rng = np.random.default_rng(5)
    samples = rng.normal(0, 0.01, 24000).astype(np.float32)
    samples[4000 : 4000 + len(yes16k)] += yes16k
    return pcm_s16(samples)


@pytest.fixture(scope="module")
def reference(server, audio) -> dict:
    """What a plain websockets client gets for the same audio, sent 100 ms a message."""
    result = asyncio.run(stream_audio(server.ws_url, audio, start=start_message(threshold=1.0)))
    assert result.close_code == 1000
    return result.decision


@pytest.fixture
def bytes_websockets_parsed(monkeypatch) -> list[int]:
    """Every piece of data the server side's websockets parser receives (the test client's is left out)."""
    sizes: list[int] = []
    receive_data = Protocol.receive_data

    def counting(self, data):
        if self.side is Side.SERVER:
            sizes.append(len(data))
        return receive_data(self, data)

    monkeypatch.setattr(Protocol, "receive_data", counting)
    return sizes


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` cut into pieces of the given sizes in turn."""
    out, start, k = [], 0, 0
    while start < len(data):
        out.append(data[start : start + sizes[k % len(sizes)]])
        start += sizes[k % len(sizes)]
        k += 1
    return out


async def _converse(url: str, wire: bytes, pieces: list[int]) -> tuple[dict | None, int | None, int]:
    async with RawClient(url) as client:
        await client.write(text(json.loads(start_message(threshold=1.0))))
        assert (await client.next_message())["type"] == "ready"
        for piece in _pieces(wire, pieces):
            await client.write(piece)
        decision = await client.next_message()
        return decision, await client.until_closed(), client.pongs


@pytest.mark.parametrize("pieces", [[CHUNK + 8], [1, 2, 3, 5, 8, 13], [100_000], [CHUNK + 9, 7, 1]],
                         ids=["a-frame-a-write", "dribbled", "all-at-once", "straddling"])
def test_any_cut_of_the_byte_stream_gives_the_same_decision(server, audio, reference, bytes_websockets_parsed, pieces):
    frames = [frame(0x2, audio[o : o + CHUNK]) for o in range(0, len(audio), CHUNK)]
    # A ping, and one message sent as two fragments, in among the audio: both go through websockets.
    middle = len(frames) // 2
    fragment = audio[middle * CHUNK : (middle + 1) * CHUNK]
    frames[middle] = frame(0x2, fragment[:1000], fin=False) + frame(0x0, fragment[1000:])
    frames.insert(3, frame(0x9, b"are you there"))
    wire = b"".join(frames) + text({"type": "stop"})

    decision, close_code, pongs = asyncio.run(_converse(server.ws_url, wire, pieces))

    assert close_code == 1000 and pongs == 1
    assert (decision["label"], decision["frame"], decision["early"]) == (reference["label"], reference["frame"], False)
    assert decision["score"] == pytest.approx(reference["score"], abs=1e-6)
    # websockets parsed the handshake, start, ping, fragments, stop and close: not the 14 whole audio frames.
    assert sum(bytes_websockets_parsed) < 2 * CHUNK + 2000, bytes_websockets_parsed
    assert server.wait_sessions_zero() == 0.0


async def _ready_then(url: str, wire: bytes) -> tuple[list[dict], int | None]:
    async with RawClient(url) as client:
        await client.write(text(json.loads(start_message(threshold=1.0))))
        assert (await client.next_message())["type"] == "ready"
        await client.write(frame(0x2, b"\x00\x00" * 1600))  # the direct path is in use from here
        await client.write(wire)
        code = await client.until_closed()
        return client.messages, code


@pytest.mark.parametrize("wire, code", [
    (frame(0x2, b"\x00\x00" * 100, masked=False), 1002),  # clients must mask
    (frame(0x2, b"\x00\x00" * 100, rsv1=True), 1002),  # compression was not negotiated
    (frame(0x0, b"\x00\x00" * 100), 1002),  # a continuation with nothing to continue
], ids=["unmasked", "rsv1", "stray-continuation"])
def test_malformed_frames_still_meet_websockets(server, wire, code):
    _, close_code = asyncio.run(_ready_then(server.ws_url, wire))
    assert close_code == code
    assert server.wait_sessions_zero() == 0.0


def test_a_frame_past_the_size_limit_is_refused_from_its_header(server):
    """Only the header of a 64 MiB frame is sent: the server must not wait for (or buffer) the payload."""
    header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 64 << 20) + os.urandom(4)
    _, close_code = asyncio.run(_ready_then(server.ws_url, header + b"\x00" * 100))
    assert close_code == 1009
    assert server.wait_sessions_zero() == 0.0


def test_frame_extent_reads_every_length_form():
    for payload in (0, 125, 126, 65535, 65536):
        wire = bytearray(b"\xff\xff" + frame(0x2, b"\x01" * payload))  # read from an offset, too
        header = len(wire) - 2 - payload
        length_bytes = header - 4  # the first two bytes and the extended length, without the mask
        assert frame_extent(wire, 2) == (header, payload)
        assert frame_extent(wire[: 2 + length_bytes], 2) == (header, payload)  # the mask need not be here yet
        assert frame_extent(wire[: 1 + length_bytes], 2) is None
