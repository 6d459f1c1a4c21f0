"""WebSocket `/v1/stream`: protocol v1 (docs/protocol.md) on top of a `StreamSession`.

Two tasks per connection: a receiver that decodes client messages into the session, and the
handler itself, which sends whatever the session produces (scores, the decision, an error) and
closes with the code the protocol assigns. Under `DirectAudioProtocol` (server/direct_audio.py),
binary audio skips the receiver: the protocol hands it to `_on_audio` as it arrives. Every way out
runs through one `finally` that frees the stream's slot and writes the session's log line, so no
path can leak a session.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from firstspike import protocol
from firstspike.server.audio_input import AudioError, AudioFormat
from firstspike.server.context import ServerContext
from firstspike.server.direct_audio import DIRECT_AUDIO, DirectAudio
from firstspike.server.engine import EngineFull
from firstspike.server.logs import SESSION_LOGGER, format_fields
from firstspike.server.models import frame_ms, resolve_model
from firstspike.server.session import Decision, Failure, StreamSession

session_log = logging.getLogger(SESSION_LOGGER)
log = logging.getLogger("firstspike.server.stream")


class _Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.failure = Failure(code, message)


class _Gone(Exception):
    """The client closed or vanished."""

    def __init__(self, code: int):
        self.code = code


async def stream_endpoint(ws: WebSocket) -> None:
    ctx: ServerContext = ws.app.state.ctx
    rejected = ctx.metrics.sessions_rejected
    if not ctx.authorised(ws.headers, ws.query_params):
        rejected.labels(reason=protocol.ERR_UNAUTHORIZED).inc()
        await _deny(ws, 401, protocol.ERR_UNAUTHORIZED, "missing or invalid API key (Authorization: Bearer … or ?token=…)")
        return
    if ctx.draining:
        rejected.labels(reason=protocol.ERR_SHUTTING_DOWN).inc()
        await _deny(ws, 503, protocol.ERR_SHUTTING_DOWN, "the server is shutting down; try another instance")
        return
    load = ctx.load
    if not ctx.admits_another_stream(load):  # refused before the handshake: cheapest when CPU is shortest
        rejected.labels(reason=protocol.ERR_OVERLOADED).inc()
        await _deny(ws, 503, protocol.ERR_OVERLOADED,
                    f"the server is at capacity: {ctx.connections} streams keep its scheduler busy "
                    f"{load:.0%} of the time (limit {ctx.settings.max_load:.0%}); try again shortly",
                    retry_after_s=1)
        return
    ctx.connections += 1
    try:
        await _Conversation(ws, ctx).run()
    finally:
        ctx.connections -= 1


async def _deny(ws: WebSocket, status: int, code: str, message: str, retry_after_s: int = 5) -> None:
    """Refuse the upgrade with a plain HTTP status where the server supports it, else error + close."""
    body = {"type": protocol.ERROR, "code": code, "message": message}
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {"Retry-After": str(retry_after_s)}
        await ws.send_denial_response(JSONResponse(body, status_code=status, headers=headers))
        return
    await ws.accept()
    await ws.send_text(json.dumps(body))
    await ws.close(protocol.ERROR_CLOSE_CODES[code])


class _Conversation:
    def __init__(self, ws: WebSocket, ctx: ServerContext):
        self.ws = ws
        self.ctx = ctx
        self.settings = ctx.settings
        self.id = secrets.token_hex(8)
        self.session: StreamSession | None = None
        self.stop_received = False
        self.close_code: int | None = None
        self.error_code: str | None = None
        self.began = time.perf_counter()

    async def run(self) -> None:
        try:
            await self.ws.accept()
            if not self.ctx.origin_allowed(self.ws.headers):
                raise _Refused(protocol.ERR_ORIGIN, f"origin {self.ws.headers.get('origin')!r} is not allowed")
            if self.ctx.connections > self.settings.max_sessions:
                raise _Refused(protocol.ERR_OVERLOADED, f"the server holds its limit of {self.settings.max_sessions} streams")
            start = await self._receive_start()
            if self.ctx.draining:
                raise _Refused(protocol.ERR_SHUTTING_DOWN, "the server is shutting down; try another instance")
            self.session = self._open_session(start)
            await self._converse(self.session)
        except _Refused as refused:
            self.ctx.metrics.sessions_rejected.labels(reason=refused.failure.code).inc()
            await self._send_error(refused.failure)
        except _Gone as gone:
            self.close_code = gone.code
        except Exception as err:  # whatever went wrong, the client hears 1011 and the slot is freed
            log.exception("session %s failed", self.id)
            await self._send_error(Failure(protocol.ERR_INTERNAL, f"internal error: {type(err).__name__}"))
        finally:
            self._finish()

    # -- start -------------------------------------------------------------------------------
    async def _receive_start(self) -> dict:
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.settings.start_timeout_s)
        except asyncio.TimeoutError:
            raise _Refused(
                protocol.ERR_START_TIMEOUT, f"no start message within {self.settings.start_timeout_s:g} s"
            ) from None
        if message["type"] == "websocket.disconnect":
            raise _Gone(message.get("code", 1005))
        if message.get("bytes") is not None:
            raise _Refused(protocol.ERR_PROTOCOL, "binary audio before the start message")
        start = self._decode_json(message.get("text") or "", protocol.ERR_BAD_START,
                                  "the first message must be a JSON start message")
        if not isinstance(start, dict):
            raise _Refused(protocol.ERR_BAD_START, "the start message must be a JSON object")
        kind = start.get("type")
        if kind != protocol.START:
            code = protocol.ERR_PROTOCOL if kind == protocol.STOP else protocol.ERR_BAD_START
            raise _Refused(code, f"expected a message of type 'start', got {kind!r}")
        return start

    def _open_session(self, start: dict) -> StreamSession:
        rate = start.get("sample_rate")
        encoding = start.get("encoding")
        channels = start.get("channels", 1)
        for field, value in (("sample_rate", rate), ("channels", channels)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise _Refused(protocol.ERR_BAD_START, f"start field {field!r} must be an integer, got {value!r}")
        if not isinstance(encoding, str):
            raise _Refused(protocol.ERR_BAD_START, f"start field 'encoding' must be a string, got {encoding!r}")
        try:
            fmt = AudioFormat(encoding, rate, channels)
        except AudioError as err:
            raise _Refused(err.code, str(err)) from None

        requested = start.get("model")
        if requested is not None and not isinstance(requested, str):
            raise _Refused(protocol.ERR_BAD_START, "start field 'model' must be a string")
        try:
            model = resolve_model(self.ctx.models, requested)
        except KeyError:
            raise _Refused(
                protocol.ERR_UNKNOWN_MODEL, f"unknown model {requested!r}; available: {sorted(self.ctx.models)}"
            ) from None

        threshold = start.get("threshold", model.threshold)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold <= 1.0:
            raise _Refused(protocol.ERR_BAD_START, f"start field 'threshold' must be a number in (0, 1], got {threshold!r}")
        partials = start.get("partials", False)
        if not isinstance(partials, bool):
            raise _Refused(protocol.ERR_BAD_START, f"start field 'partials' must be true or false, got {partials!r}")
        endpoint_ms = start.get("endpoint_ms")
        low, high = protocol.ENDPOINT_MS_RANGE
        if endpoint_ms is not None and (
            isinstance(endpoint_ms, bool) or not isinstance(endpoint_ms, (int, float)) or not low <= endpoint_ms <= high
        ):
            raise _Refused(protocol.ERR_BAD_START,
                           f"start field 'endpoint_ms' must be a number of ms in [{low}, {high}], got {endpoint_ms!r}")

        try:
            session = StreamSession(self.id, model, self.ctx.engines[model.name], fmt, float(threshold), partials,
                                    None if endpoint_ms is None else float(endpoint_ms))
        except EngineFull as err:
            raise _Refused(protocol.ERR_OVERLOADED, str(err)) from None
        self.ctx.sessions[self.id] = session
        self.ctx.metrics.sessions_total.inc()
        self.ctx.metrics.sessions_active.inc()
        return session

    def _ready_message(self, session: StreamSession) -> dict:
        info = session.info
        ready = {
            "type": protocol.READY,
            "session_id": self.id,
            "model": session.model.full_name,
            "labels": list(info.labels),
            "firing_labels": list(info.firing_labels),
            "sample_rate": info.sample_rate,
            "frame_ms": frame_ms(info),
            "threshold": session.threshold,
            "protocol": protocol.PROTOCOL_VERSION,
        }
        if session.endpointer is not None:
            ready["endpoint_ms"] = session.endpointer.quiet_ms
        return ready

    # -- streaming ---------------------------------------------------------------------------
    async def _converse(self, session: StreamSession) -> None:
        receiver = asyncio.get_running_loop().create_task(self._receive_loop(session))
        direct: DirectAudio | None = self.ws.scope.get("extensions", {}).get(DIRECT_AUDIO)
        if direct is not None:  # binary audio skips ASGI; text, close and disconnect still come through it
            session.on_resume = direct.resume_reading
            direct.attach(lambda data: self._on_audio(session, direct, data))
        try:
            # Ready goes out only once the direct path is attached: sending yields to the loop, and a
            # client that answers at once would otherwise stream its audio through ASGI.
            await self._send(self._ready_message(session))
            while True:
                kind, payload = await session.events.get()
                if kind == "scores":
                    await self._send(session.scores_message(*payload))
                elif kind == "decision":
                    await self._send_decision(payload, protocol.CLOSE_NORMAL)
                    return
                elif kind == "error":
                    await self._send_error(payload)
                    return
                elif kind == "gone":
                    raise _Gone(payload)
                elif kind == "shutdown":
                    receiver.cancel()
                    await self._final_decision_on_shutdown(session)
                    return
        finally:
            receiver.cancel()
            if direct is not None:
                direct.detach()

    def _on_audio(self, session: StreamSession, direct: DirectAudio, data: bytes) -> None:
        """One binary message from the direct path (server/direct_audio.py), in the protocol's callback."""
        session.last_activity = time.monotonic()
        if session.finished:
            return
        try:
            self._check_audio_message(session, data)
            if not session.feed_nowait(data, time.perf_counter()):
                direct.pause_reading()  # until the engine has room: the session calls on_resume
            session.check_length(self.settings.max_stream_seconds)
        except AudioError as err:
            session.fail(err.code, str(err))
        except Exception as err:  # an exception here would reach uvicorn's data_received
            log.exception("session %s: taking audio failed", self.id)
            session.fail(protocol.ERR_INTERNAL, f"internal error: {type(err).__name__}")

    def _check_audio_message(self, session: StreamSession, data: bytes) -> None:
        max_bytes = self.settings.max_message_bytes
        if len(data) > max_bytes:
            raise AudioError(protocol.ERR_TOO_BIG, f"binary message of {len(data)} bytes exceeds {max_bytes}")
        if self.stop_received:
            raise AudioError(protocol.ERR_PROTOCOL, "audio after the stop message")

    async def _receive_loop(self, session: StreamSession) -> None:
        settings = self.settings
        try:
            while not session.finished:
                message = await self.ws.receive()
                session.last_activity = time.monotonic()
                if message["type"] == "websocket.disconnect":
                    session.events.put_nowait(("gone", message.get("code", 1005)))
                    return
                data = message.get("bytes")
                if data is not None:
                    self._check_audio_message(session, data)
                    await session.feed(data, time.perf_counter())
                    session.check_length(settings.max_stream_seconds)
                elif self._is_stop(message.get("text") or ""):
                    await session.stop(time.perf_counter())
        except AudioError as err:
            session.fail(err.code, str(err))
        except _Refused as refused:
            session.fail(refused.failure.code, str(refused))
        except asyncio.CancelledError:
            raise
        except Exception as err:  # never leave the handler waiting on a receiver that died
            log.exception("session %s: receiving failed", self.id)
            session.fail(protocol.ERR_INTERNAL, f"internal error: {type(err).__name__}")

    def _decode_json(self, text: str, bad_json_code: str, bad_json_message: str):
        """Every text message: refuse one over the size limit before parsing it, then parse it."""
        if len(text) > self.settings.max_message_bytes:
            raise _Refused(protocol.ERR_TOO_BIG, f"text message exceeds {self.settings.max_message_bytes} bytes")
        try:
            return json.loads(text)
        except ValueError:
            raise _Refused(bad_json_code, bad_json_message) from None

    def _is_stop(self, text: str) -> bool:
        """A text message after start must be a (single) stop; anything else is protocol misuse.

        A stop that follows the server's own end of speech (`endpoint_ms`) is fine: the session's
        `stop` counts only once."""
        message = self._decode_json(text, protocol.ERR_PROTOCOL, "text messages must be JSON")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == protocol.STOP and not self.stop_received:
            self.stop_received = True
            return True
        if kind == protocol.STOP:
            raise _Refused(protocol.ERR_PROTOCOL, "stop sent twice")
        if kind == protocol.START:
            raise _Refused(protocol.ERR_PROTOCOL, "start sent twice")
        raise _Refused(protocol.ERR_PROTOCOL, f"unexpected message type {kind!r} (expected audio or stop)")

    async def _final_decision_on_shutdown(self, session: StreamSession) -> None:
        """Grace period over: decide on the audio so far and close 1001."""
        if not session.finished and not session.stopping:
            try:
                await session.stop(time.perf_counter())
            except AudioError:
                pass  # a dangling partial sample does not matter any more
        while True:
            try:
                kind, payload = await asyncio.wait_for(session.events.get(), 2.0)
            except asyncio.TimeoutError:
                break
            if kind == "decision":
                await self._send_decision(payload, protocol.CLOSE_GOING_AWAY)
                return
            if kind in ("error", "gone"):
                break
        await self._send_error(Failure(protocol.ERR_SHUTTING_DOWN, "the server is shutting down"))

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, message: dict) -> None:
        if self.ws.client_state != WebSocketState.CONNECTED:
            raise _Gone(1006)
        try:
            await asyncio.wait_for(self.ws.send_text(json.dumps(message)), self.settings.send_timeout_s)
        except asyncio.TimeoutError:
            raise _Gone(1006) from None
        except (OSError, RuntimeError, WebSocketDisconnect) as err:
            raise _Gone(getattr(err, "code", 1006)) from None

    async def _send_decision(self, decision: Decision, close_code: int) -> None:
        message = decision.message(time.perf_counter())
        model = self.session.model.name if self.session else ""
        self.ctx.metrics.decisions.labels(model=model, label=decision.label, early=str(decision.early).lower(),
                                          endpointed=str(bool(decision.endpointed)).lower()).inc()
        self.ctx.metrics.decision_seconds.observe(message["processing_ms"] / 1000.0)
        await self._send(message)
        await self._close(close_code)

    async def _send_error(self, failure: Failure) -> None:
        self.error_code = failure.code
        try:
            await self._send({"type": protocol.ERROR, "code": failure.code, "message": failure.message})
        except _Gone as gone:
            self.close_code = gone.code
            return
        await self._close(failure.close_code)

    async def _close(self, code: int) -> None:
        self.close_code = code
        if self.ws.client_state == WebSocketState.CONNECTED:
            try:
                await asyncio.wait_for(self.ws.close(code), self.settings.send_timeout_s)
            except (asyncio.TimeoutError, OSError, RuntimeError, WebSocketDisconnect):
                pass

    def _finish(self) -> None:
        session = self.session
        decision = session.decision if session else None
        frames = 0
        if session is not None:
            frames = decision.frame if decision else session.engine.frames_of(session.slot)
            session.close()
            self.ctx.sessions.pop(self.id, None)
            self.ctx.metrics.sessions_active.dec()
        fields = {
            "event": "session_end",
            "session": self.id,
            "model": session.model.full_name if session else None,
            "label": decision.label if decision else None,
            "early": decision.early if decision else None,
            "endpointed": decision.endpointed if decision else None,
            "score": decision.score if decision else None,
            "audio_ms": decision.audio_ms if decision else None,
            "frames": frames,
            "wall_ms": round((time.perf_counter() - self.began) * 1000.0, 1),
            "close_code": self.close_code if self.close_code is not None else 1006,
            "error": self.error_code,
        }
        session_log.info(format_fields(fields, self.settings.log_format))
