"""uvicorn's websocket protocol, with a direct path for a stream's binary audio messages.

Through ASGI every message takes a detour: uvicorn queues it, pauses reading the socket, wakes the
handler's task, and resumes reading when the handler asks for the next message. At ten 100 ms
messages a second per stream, that detour was the largest cost per message on the event loop
(docs/benchmarks.md, "one websocket hop fewer"). This protocol keeps ASGI for everything else
(handshake, text messages, close, disconnect) and lets the stream handler claim binary messages:
once it attaches a callback, each whole binary message is handed to it synchronously, from
`data_received`, in arrival order. Backpressure becomes the transport's own: the handler pauses
reading while the model is behind and resumes it when there is room.

Order is kept across the two paths: a text message (a `stop`, or anything else) detaches the
callback before it is queued, so every later message follows it through ASGI.

Below uvicorn's event handling, websockets' frame parser was the next cost: a generator reading
header, mask and payload in steps, a `Frame` object and its checks, for every 100 ms of audio. Once
the handshake is over, this protocol splits the byte stream into frames itself. A whole,
unfragmented, uncompressed, masked binary frame within the size limit, arriving while a callback is
attached, is unmasked and handed over here. Every other frame (text, control, fragments, anything
malformed or too big) is passed to websockets byte for byte, as it arrives, so websockets only ever
sees whole frames from a frame boundary and judges them exactly as before.

Without this protocol (another uvicorn websocket implementation, or another ASGI server) the scope
has no `DIRECT_AUDIO` extension and the handler reads audio through ASGI as before.
"""

from __future__ import annotations

import weakref
from typing import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import apply_mask  # websockets' C speed-up where it is built
from websockets.protocol import State

# The key under scope["extensions"] whose value is a `DirectAudio`.
DIRECT_AUDIO = "firstspike.direct_audio"

AudioCallback = Callable[[bytes], None]

# First header byte of a frame the direct path takes: FIN set, RSV bits clear, opcode 2 (binary).
_WHOLE_BINARY = 0x82


def frame_extent(buffer: bytearray, start: int) -> tuple[int, int] | None:
    """(header length including the mask, payload length) of the frame at `start` (RFC 6455, 5.2),
    or None until enough of its header is here."""
    available = len(buffer) - start
    if available < 2:
        return None
    second = buffer[start + 1]
    length, header = second & 0x7F, 2
    if length == 126:
        header = 4
        if available < header:
            return None
        length = int.from_bytes(buffer[start + 2 : start + 4], "big")
    elif length == 127:
        header = 10
        if available < header:
            return None
        length = int.from_bytes(buffer[start + 2 : start + 10], "big")
    if second & 0x80:
        header += 4
    return header, length


class DirectAudio:
    """What the stream handler holds: attach a callback for binary messages, and pause or resume reading.

    It holds its protocol weakly. The protocol holds it (in the scope), so a strong reference would
    make every connection a reference cycle, freed only by a full garbage collection (see
    `DirectAudioProtocol.connection_lost`). Once the connection is gone there is nothing to do.
    """

    def __init__(self, protocol: "DirectAudioProtocol"):
        self._protocol = weakref.ref(protocol)

    def attach(self, on_audio: AudioCallback) -> None:
        if (protocol := self._protocol()) is not None:
            protocol.on_audio = on_audio

    def detach(self) -> None:
        """Back to ASGI for every message, reading resumed (the close handshake must be read)."""
        if (protocol := self._protocol()) is not None:
            protocol.on_audio = None
            protocol.resume_audio()

    def pause_reading(self) -> None:
        if (protocol := self._protocol()) is not None:
            protocol.pause_audio()

    def resume_reading(self) -> None:
        if (protocol := self._protocol()) is not None:
            protocol.resume_audio()


class DirectAudioProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` whose binary messages can bypass ASGI (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_audio: AudioCallback | None = None
        self._audio_paused = False
        self._splitting = False  # from the first frame on: `_split_frames` sees every byte first
        self._unsplit = bytearray()  # the start of a frame that has not fully arrived
        self._owed = 0  # bytes of a frame passed to websockets that it has not received yet

    def data_received(self, data: bytes) -> None:
        if self._splitting:
            self._split_frames(data)
            return
        super().data_received(data)
        # uvicorn hands the upgrade request over whole, in one call, as the first bytes. If the
        # handshake went on and websockets holds nothing more, its parser now waits at a frame
        # boundary; otherwise every byte keeps going to websockets.
        self._splitting = getattr(self, "scope", None) is not None and not self.conn.reader.buffer

    def _split_frames(self, data: bytes) -> None:
        if self._owed:  # the rest of a frame websockets is parsing
            owed = data[: self._owed]
            self._owed -= len(owed)
            data = data[len(owed) :]
            super().data_received(owed)
        if not data:
            return
        buffer = self._unsplit
        buffer += data
        start = 0
        while (extent := frame_extent(buffer, start)) is not None:
            header, length = extent
            end = start + header + length
            if self._takes_directly(buffer[start], buffer[start + 1], length):
                if end > len(buffer):
                    break  # wait for the rest of this message
                mask = buffer[start + header - 4 : start + header]
                with memoryview(buffer) as view:  # released before the buffer changes size
                    payload = apply_mask(view[start + header : end], mask)
                start = end
                self.on_audio(payload)  # type: ignore[misc]  # checked by _takes_directly
            else:
                passed = bytes(buffer[start:end])
                self._owed = end - start - len(passed)
                start += len(passed)
                super().data_received(passed)
        del buffer[:start]

    def _takes_directly(self, first: int, second: int, length: int) -> bool:
        conn = self.conn
        limit = conn.max_message_size
        return (
            first == _WHOLE_BINARY
            and second & 0x80 != 0  # masked, as every client frame must be
            and self.on_audio is not None
            and not self.close_sent
            and conn.state is State.OPEN
            and conn.current_size is None  # not inside a fragmented message
            and conn.parser_exc is None
            and (limit is None or length <= limit)
        )

    def connection_lost(self, exc: Exception | None) -> None:
        """Let reference counting free the connection the moment it ends.

        websockets' parser is a generator that holds its own protocol, a cycle that only a full
        (oldest-generation) collection frees. At 1000 streams of 8 s clips, 125 connections end
        every second, and such a collection came every minute or so and stopped the whole server
        for 0.7–0.9 s while it freed them (docs/benchmarks.md, *Full collections at 1000 streams*).
        Nothing reads from a lost connection, so its parser can be closed now.
        """
        super().connection_lost(exc)
        self.on_audio = None
        self.conn.parser.close()

    def handle_connect(self, event) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # absent when the handshake itself was refused
        if scope is not None:
            scope["extensions"][DIRECT_AUDIO] = DirectAudio(self)

    def handle_bytes(self, event) -> None:
        if self.on_audio is None or self.close_sent:
            super().handle_bytes(event)
        elif event.fin:
            self.on_audio(event.data)
        else:  # the first fragment of a fragmented message: collect it like uvicorn does
            self.curr_msg_data_type = "bytes"
            self.frames = [event.data]

    def handle_cont(self, event) -> None:
        if self.on_audio is None or self.close_sent or self.curr_msg_data_type != "bytes":
            super().handle_cont(event)
            return
        self.frames.append(event.data)
        if event.fin:
            data = b"".join(self.frames)
            self.frames = []
            self.on_audio(data)

    def handle_text(self, event) -> None:
        self.on_audio = None  # this and every later message go through ASGI, in order
        super().handle_text(event)

    def pause_audio(self) -> None:
        if not self._audio_paused and not self.transport.is_closing():
            self._audio_paused = True
            self.transport.pause_reading()

    def resume_audio(self) -> None:
        if self._audio_paused:
            self._audio_paused = False
            # uvicorn pauses reading too, until the handler takes a queued message; leave that to it.
            if not self.read_paused and not self.transport.is_closing():
                self.transport.resume_reading()
