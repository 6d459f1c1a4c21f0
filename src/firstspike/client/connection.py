"""One protocol-v1 session: start → ready → paced audio → (scores) → decision → close.

Every event is stamped with `time.perf_counter`, so the report can say how long the server took from
the chunk that held the deciding frame to the decision, without trusting the server's clock.
"""

from __future__ import annotations

import asyncio
import json
from array import array
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from firstspike.protocol import (
    CLOSE_NORMAL,
    CLOSE_REASONS,
    DECISION,
    ERROR,
    READY,
    SCORES,
    STOP,
)

if TYPE_CHECKING:
    from firstspike.client.send_clock import SendClock

DEFAULT_URL = "ws://127.0.0.1:8000/v1/stream"

# Outcome kinds, which the commands map to exit codes.
OK = "ok"
UNAVAILABLE = "unavailable"  # nothing listening, timeout, HTTP 502/503/504: try later
REJECTED = "rejected"  # the server said no: HTTP 401/403/404..., error message, close code other than 1000
PROTOCOL = "protocol"  # the server broke protocol v1 (no ready, closed without a decision...)


class SentChunk(NamedTuple):
    start_frame: int
    end_frame: int
    sent_at: float  # perf_counter just before handing the chunk to the socket
    lag_ms: float  # how late against the real-time schedule (0 when not paced)


class SentChunks:
    """Every chunk a session sent, kept as four columns of numbers rather than one object per chunk.

    A load generator holds about 80 of these records per open 8 s stream. As objects they were a third
    of what its garbage collector walked in each middle-generation collection, which took 20–68 ms of
    CPU at 1000 streams and stalled every stream of the process (docs/benchmarks.md, *Server on the
    current machine*). Indexing and iterating give `SentChunk` rows, built on demand.
    """

    __slots__ = ("_start", "_end", "_sent_at", "_lag")

    def __init__(self) -> None:
        self._start, self._end = array("q"), array("q")
        self._sent_at, self._lag = array("d"), array("d")

    def append(self, start_frame: int, end_frame: int, sent_at: float, lag_ms: float) -> None:
        self._start.append(start_frame)
        self._end.append(end_frame)
        self._sent_at.append(sent_at)
        self._lag.append(lag_ms)

    def __len__(self) -> int:
        return len(self._start)

    def __getitem__(self, index: int) -> SentChunk:
        return SentChunk(self._start[index], self._end[index], self._sent_at[index], self._lag[index])

    def __iter__(self):
        return map(SentChunk, self._start, self._end, self._sent_at, self._lag)

    @property
    def max_lag_ms(self) -> float:
        return max(self._lag, default=0.0)


@dataclass
class SessionResult:
    """What happened in one session, with raw timings; derived figures are properties."""

    sample_rate: int
    channels: int
    outcome: str = OK
    failure: str = ""  # human-readable reason when outcome != ok
    failure_key: str = ""  # short key for tallies: "close 1013", "http 503 overloaded", "refused", ...
    ready: dict | None = None
    decision: dict | None = None
    error: dict | None = None
    close_code: int | None = None
    close_reason: str = ""
    retry_after_s: float | None = None  # a refused upgrade's Retry-After: when the server asks to be tried again
    connect_started: float = 0.0
    connected_at: float | None = None
    ready_at: float | None = None
    first_byte_at: float | None = None
    stop_sent_at: float | None = None
    decision_at: float | None = None
    closed_at: float | None = None
    ping_rtt_ms: float | None = None
    chunks: SentChunks = field(default_factory=SentChunks)
    scores_received: int = 0
    last_scores: dict | None = None

    # -- derived --------------------------------------------------------------------------
    @property
    def frames_sent(self) -> int:
        return self.chunks[-1].end_frame if self.chunks else 0

    @property
    def audio_ms_sent(self) -> float:
        return 1000.0 * self.frames_sent / self.sample_rate

    @property
    def max_lag_ms(self) -> float:
        return self.chunks.max_lag_ms

    @property
    def early(self) -> bool | None:
        return None if self.decision is None else bool(self.decision.get("early"))

    @property
    def endpointed(self) -> bool:
        """Did the server decide because the speech was over (a session with `endpoint_ms`)?"""
        return self.decision is not None and self.decision.get("endpointed") is True

    @property
    def decision_chunk(self) -> int | None:
        """Index of the chunk that held the deciding frame's last sample (None for a stop decision).

        For a decision at the end of speech, the deciding frame is the last one the server took."""
        if self.decision is None or not self.chunks or not (self.early or self.endpointed):
            return None
        needed = float(self.decision.get("audio_ms", 0.0)) * self.sample_rate / 1000.0
        if not self.early:  # the server pads the last frame, so it can end past the audio sent before it
            needed -= float((self.ready or {}).get("frame_ms", 0.0)) * self.sample_rate / 1000.0 - 1
        for index, chunk in enumerate(self.chunks):
            if chunk.end_frame >= needed - 1e-6:
                return index
        return len(self.chunks) - 1

    @property
    def decision_latency_ms(self) -> float | None:
        """From sending the chunk holding the deciding frame (or the stop message) to the decision."""
        if self.decision_at is None:
            return None
        index = self.decision_chunk
        if index is not None:
            return 1000.0 * (self.decision_at - self.chunks[index].sent_at)
        if self.stop_sent_at is not None:
            return 1000.0 * (self.decision_at - self.stop_sent_at)
        return None

    @property
    def wall_ms_to_decision(self) -> float | None:
        if self.decision_at is None or self.first_byte_at is None:
            return None
        return 1000.0 * (self.decision_at - self.first_byte_at)

    @property
    def connect_ms(self) -> float | None:
        return None if self.ready_at is None else 1000.0 * (self.ready_at - self.connect_started)


class SessionOptions:
    """Connection settings shared by every session a command opens."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        model: str | None = None,
        threshold: float | None = None,
        partials: bool = False,
        endpoint_ms: float | None = None,
        ping: bool = True,
        open_timeout: float = 10.0,
        decision_timeout: float = 10.0,
    ) -> None:
        check_url(url)
        self.url = url
        self.token = token
        self.model = model
        self.threshold = threshold
        self.partials = partials
        self.endpoint_ms = endpoint_ms
        self.ping = ping
        self.open_timeout = open_timeout
        self.decision_timeout = decision_timeout

    def start_message(self, sample_rate: int, channels: int) -> dict:
        message = {"type": "start", "sample_rate": sample_rate, "encoding": "pcm_s16le", "channels": channels}
        if self.model:
            message["model"] = self.model
        if self.threshold is not None:
            message["threshold"] = self.threshold
        if self.partials:
            message["partials"] = True
        if self.endpoint_ms is not None:
            message["endpoint_ms"] = self.endpoint_ms
        return message

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"--url must look like ws://HOST:PORT/v1/stream, got {url!r}")


def http_base(url: str) -> str:
    """The server's HTTP root for a websocket URL (for /metrics, /healthz)."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


class _Pacer:
    """Holds chunk k back until k's first sample is due in real time (sample count / rate)."""

    def __init__(self, sample_rate: int, paced: bool) -> None:
        self.sample_rate = sample_rate
        self.paced = paced
        self.t0: float | None = None

    async def wait(self, start_frame: int) -> float:
        now = time.perf_counter()
        if self.t0 is None:
            self.t0 = now
        if not self.paced:
            return 0.0
        due = self.t0 + start_frame / self.sample_rate
        if due > now:
            await asyncio.sleep(due - now)
            return max(0.0, 1000.0 * (time.perf_counter() - due))
        return 1000.0 * (now - due)


def _error_code(body: str) -> str | None:
    """The protocol error code of a refused upgrade's JSON body, if it has one."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) and code.isidentifier() else None


def _retry_after(err: BaseException) -> float | None:
    """Seconds from a refused upgrade's Retry-After header (the delta form), if it has one."""
    response = getattr(err, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _classify_open_error(err: BaseException) -> tuple[str, str, str]:
    """(outcome, key, message) for a failure to open the websocket."""
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    if isinstance(err, InvalidStatus):
        status = err.response.status_code
        outcome = UNAVAILABLE if status in (502, 503, 504) else REJECTED
        body = err.response.body.decode("utf-8", "replace").strip()[:200] if err.response.body else ""
        code = _error_code(body)  # a 503 may mean shutting down or overloaded: tallies keep them apart
        key = f"http {status}" + (f" {code}" if code else "")
        return outcome, key, f"server refused the upgrade with HTTP {status}" + (f": {body}" if body else "")
    if isinstance(err, InvalidURI):
        return REJECTED, "bad url", str(err)
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return UNAVAILABLE, "timeout", "timed out opening the connection"
    if isinstance(err, ConnectionRefusedError):
        return UNAVAILABLE, "refused", f"connection refused ({err.strerror or err})"
    if isinstance(err, OSError):
        return UNAVAILABLE, "unreachable", f"cannot reach the server ({err.strerror or err})"
    if isinstance(err, InvalidHandshake):
        return PROTOCOL, "bad handshake", f"bad websocket handshake ({err})"
    raise err


async def run_session(
    options: SessionOptions,
    sample_rate: int,
    channels: int,
    chunks: Iterable[bytes] | AsyncIterator[bytes],
    paced: bool = True,
    on_ready: Callable[[dict], None] | None = None,
    on_scores: Callable[[dict], None] | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
    result: SessionResult | None = None,
    clock: "SendClock | None" = None,
) -> SessionResult:
    """Run one session to its end and return everything that happened; never raises for server faults.

    `chunks` are pcm_s16le byte strings (sync or async). When they run out without a decision, the
    client sends `stop` and waits for the non-early decision. A `clock` paces a list of chunks from
    one shared timer instead of one sleep per chunk (the load generator's many streams).
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    res = result or SessionResult(sample_rate=sample_rate, channels=channels)
    res.connect_started = time.perf_counter()
    try:
        ws = await asyncio.wait_for(
            connect(
                options.url,
                additional_headers=options.headers(),
                compression=None,  # PCM does not deflate; compressing only burns CPU on both sides
                proxy=None,
                open_timeout=options.open_timeout,
                ping_interval=None,
                close_timeout=2,
                max_size=2**20,
            ),
            timeout=options.open_timeout + 1,
        )
    except Exception as err:  # noqa: BLE001 - every open failure is classified or re-raised
        res.outcome, res.failure_key, res.failure = _classify_open_error(err)
        res.retry_after_s = _retry_after(err)
        return res
    res.connected_at = time.perf_counter()
    bytes_per_frame = 2 * channels
    ready = asyncio.Event()
    finished = asyncio.Event()  # a decision, an error, or the close

    async def receive() -> None:
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    continue  # protocol v1 sends no binary messages; ignore rather than guess
                now = time.perf_counter()
                try:
                    msg = json.loads(message)
                except json.JSONDecodeError:
                    continue
                kind = msg.get("type")
                if kind == READY:
                    res.ready, res.ready_at = msg, now
                    ready.set()
                    if on_ready:
                        on_ready(msg)
                elif kind == SCORES:
                    res.scores_received += 1
                    res.last_scores = msg
                    if on_scores:
                        on_scores(msg)
                elif kind == DECISION:
                    res.decision, res.decision_at = msg, now
                    finished.set()
                elif kind == ERROR:
                    res.error = msg
                    finished.set()
        except ConnectionClosed:
            pass
        finally:
            res.closed_at = time.perf_counter()
            finished.set()
            ready.set()

    async def send_audio() -> None:
        await ws.send(json.dumps(options.start_message(sample_rate, channels)))
        try:
            await asyncio.wait_for(ready.wait(), timeout=options.open_timeout)
        except asyncio.TimeoutError:
            res.outcome, res.failure_key = PROTOCOL, "no ready"
            res.failure = f"no ready message within {options.open_timeout:g} s of start"
            finished.set()
            return
        if res.ready is None:
            return
        if options.ping:
            pinged = time.perf_counter()
            try:
                waiter = await ws.ping()
                await asyncio.wait_for(waiter, timeout=options.decision_timeout)
                res.ping_rtt_ms = 1000.0 * (time.perf_counter() - pinged)
            except (asyncio.TimeoutError, ConnectionClosed):
                pass

        def record(chunk: bytes, frame: int, lag: float, sent_at: float) -> None:
            if res.first_byte_at is None:
                res.first_byte_at = sent_at
            res.chunks.append(frame, frame + len(chunk) // bytes_per_frame, sent_at, lag)
            if on_chunk:
                on_chunk(chunk)

        def send_if_ready(chunk: bytes, frame: int, lag: float) -> bool:
            """For the send clock: write the chunk only if it can go out at once."""
            sent_at = time.perf_counter()
            if not _send_now(ws, chunk):
                return False
            record(chunk, frame, lag, sent_at)
            return True

        pacer = _Pacer(sample_rate, paced)
        frame = 0
        remaining = chunks
        if clock is not None and paced and isinstance(chunks, list):
            offsets = _frame_offsets(chunks, bytes_per_frame)
            sent, pacer.t0 = await clock.play(
                chunks, [f / sample_rate for f in offsets],
                lambda k, lag: send_if_ready(chunks[k], offsets[k], lag),
                finished,
            )
            frame, remaining = offsets[sent], chunks[sent:]  # what the clock handed back (nothing, normally)
        async for chunk in _aiter(remaining):
            if finished.is_set():
                return
            lag = await pacer.wait(frame)
            if finished.is_set():
                return
            sent_at = time.perf_counter()
            if not _send_now(ws, chunk):
                await ws.send(chunk)
            record(chunk, frame, lag, sent_at)
            frame += len(chunk) // bytes_per_frame
        if not finished.is_set():
            res.stop_sent_at = time.perf_counter()
            await ws.send(json.dumps({"type": STOP}))

    receiver = asyncio.create_task(receive())
    sender = asyncio.create_task(send_audio())
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done() and sender.exception() is not None and not isinstance(sender.exception(), ConnectionClosed):
            raise sender.exception()
        try:
            await asyncio.wait_for(finished.wait(), timeout=options.decision_timeout)
        except asyncio.TimeoutError:
            res.outcome, res.failure_key = PROTOCOL, "no decision"
            res.failure = f"no decision within {options.decision_timeout:g} s after the audio ended"
        # The server closes after the decision; wait briefly for its close frame to learn the code.
        try:
            await asyncio.wait_for(asyncio.shield(receiver), timeout=2.0)
        except asyncio.TimeoutError:
            pass
    finally:
        sender.cancel()
        receiver.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        await ws.close()
    res.close_code = ws.close_code
    res.close_reason = ws.close_reason or ""
    _judge(res)
    return res


# Past this much unsent data, audio goes through `ws.send`, which waits for the socket to drain.
_WRITE_BUFFER_LIMIT = 1 << 16


def _send_now(ws, chunk: bytes) -> bool:
    """Write one binary frame straight through the connection's sans-I/O protocol, if that is safe.

    `ws.send` costs several times more Python per message (a send context, a drain check, fragment
    handling). The short path is taken only on an open connection whose write buffer is nearly empty,
    and only where this websockets version has it; otherwise (False) the caller uses `ws.send`, which
    waits for room and raises ConnectionClosed as usual.
    """
    protocol = getattr(ws, "protocol", None)
    transport = getattr(ws, "transport", None)
    send_data = getattr(ws, "send_data", None)
    if protocol is None or transport is None or send_data is None:
        return False
    # State.OPEN by name: no import on a path taken for every audio chunk.
    if protocol.state.name != "OPEN" or transport.get_write_buffer_size() > _WRITE_BUFFER_LIMIT:
        return False
    protocol.send_binary(chunk)
    send_data()
    return True


def _judge(res: SessionResult) -> None:
    """Turn what was received into an outcome (unless a failure was already recorded)."""
    if res.outcome != OK:
        return
    if res.error is not None:
        code = res.close_code
        res.outcome = REJECTED
        res.failure_key = f"close {code}" if code is not None else f"error {res.error.get('code')}"
        res.failure = f"server error {res.error.get('code')!r}: {res.error.get('message', '')}" + (
            f" (close {code} {CLOSE_REASONS.get(code, '')})" if code is not None else ""
        )
    elif res.ready is None:
        res.outcome = REJECTED if res.close_code not in (None, CLOSE_NORMAL) else PROTOCOL
        res.failure_key = f"close {res.close_code}"
        res.failure = f"server closed ({res.close_code} {res.close_reason or CLOSE_REASONS.get(res.close_code, '')}) before ready"
    elif res.decision is None:
        res.outcome = REJECTED if res.close_code not in (None, CLOSE_NORMAL) else PROTOCOL
        res.failure_key = f"close {res.close_code}"
        res.failure = f"server closed ({res.close_code} {res.close_reason or CLOSE_REASONS.get(res.close_code, '')}) without a decision"


def _frame_offsets(chunks: list[bytes], bytes_per_frame: int) -> list[int]:
    """Each chunk's first sample frame, plus the end of the last chunk."""
    offsets = [0]
    for chunk in chunks:
        offsets.append(offsets[-1] + len(chunk) // bytes_per_frame)
    return offsets


async def _aiter(chunks: Iterable[bytes] | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if hasattr(chunks, "__aiter__"):
        async for chunk in chunks:  # type: ignore[union-attr]
            yield chunk
    else:
        for chunk in chunks:  # type: ignore[union-attr]
            yield chunk
