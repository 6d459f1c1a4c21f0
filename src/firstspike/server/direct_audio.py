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

Without this protocol (another uvicorn websocket implementation, or another ASGI server) the scope
has no `DIRECT_AUDIO` extension and the handler reads audio through ASGI as before.
"""

from __future__ import annotations

from typing import Callable

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

# The key under scope["extensions"] whose value is a `DirectAudio`.
DIRECT_AUDIO = "firstspike.direct_audio"

AudioCallback = Callable[[bytes], None]


class DirectAudio:
    """What the stream handler holds: attach a callback for binary messages, and pause or resume reading."""

    def __init__(self, protocol: "DirectAudioProtocol"):
        self._protocol = protocol

    def attach(self, on_audio: AudioCallback) -> None:
        self._protocol.on_audio = on_audio

    def detach(self) -> None:
        """Back to ASGI for every message, reading resumed (the close handshake must be read)."""
        self._protocol.on_audio = None
        self._protocol.resume_audio()

    def pause_reading(self) -> None:
        self._protocol.pause_audio()

    def resume_reading(self) -> None:
        self._protocol.resume_audio()


class DirectAudioProtocol(WebSocketsSansIOProtocol):
    """`WebSocketsSansIOProtocol` whose binary messages can bypass ASGI (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_audio: AudioCallback | None = None
        self._audio_paused = False

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
