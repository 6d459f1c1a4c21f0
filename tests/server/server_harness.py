"""A real uvicorn server on a loopback port in a background thread, and a tiny protocol client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import soxr
import websockets
from websockets.exceptions import ConnectionClosed

from firstspike.server.app import create_app
from firstspike.server.serving import DrainingServer, uvicorn_config
from firstspike.server.settings import ServerSettings


@dataclass
class RunningServer:
    base: str  # http://127.0.0.1:PORT
    app: object
    server: DrainingServer

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/v1/stream"

    @property
    def ctx(self):
        return self.app.state.ctx

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base + path, data=body, method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def metric(self, name: str) -> float:
        """Sum of all samples of one metric in /metrics."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
            if match:
                total += float(match.group(2))
        return total

    def wait_sessions_zero(self, timeout: float = 5.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = self.metric("firstspike_sessions_active")
            if active == 0 and not self.ctx.sessions and self.ctx.connections == 0:
                return 0.0
            time.sleep(0.02)
        return self.metric("firstspike_sessions_active")


@contextlib.contextmanager
def running_server(uvicorn_options: dict | None = None, **settings):
    settings.setdefault("log_format", "kv")
    # Test clients send audio faster than real time, which keeps the scheduler busy by design: only the
    # tests of load shedding turn it on.
    settings.setdefault("max_load", 1.0)
    app = create_app(ServerSettings(**settings))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn_config(app, app.state.ctx.settings, port=port, **(uvicorn_options or {}))
    server = DrainingServer(config, app.state.ctx)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@dataclass
class StreamResult:
    ready: dict | None = None
    messages: list[dict] = field(default_factory=list)
    close_code: int | None = None

    @property
    def decision(self) -> dict | None:
        return next((m for m in self.messages if m.get("type") == "decision"), None)

    @property
    def error(self) -> dict | None:
        return next((m for m in self.messages if m.get("type") == "error"), None)

    @property
    def scores(self) -> list[dict]:
        return [m for m in self.messages if m.get("type") == "scores"]


def start_message(rate: int = 16000, encoding: str = "pcm_s16le", channels: int = 1, **extra) -> str:
    return json.dumps({"type": "start", "sample_rate": rate, "encoding": encoding, "channels": channels, **extra})


def pcm_s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


async def read_until_closed(ws, result: StreamResult, timeout: float = 10.0) -> StreamResult:
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "ready" and result.ready is None:
                    result.ready = message
                else:
                    result.messages.append(message)
    except ConnectionClosed as closed:
        result.close_code = closed.rcvd.code if closed.rcvd else 1006
    except TimeoutError:
        pass  # still open: close_code stays None
    return result


async def stream_audio(
    url: str,
    audio: bytes,
    *,
    chunk_bytes: int = 3200,
    start: str | None = None,
    stop: bool = True,
    realtime_s: float = 0.0,
    timeout: float = 20.0,
    **connect_kwargs,
) -> StreamResult:
    """Start, send `audio` in chunks (optionally paced), stop, and collect everything until the close."""
    result = StreamResult()
    async with websockets.connect(url, max_size=None, compression=None, **connect_kwargs) as ws:
        await ws.send(start or start_message())
        result.ready = json.loads(await ws.recv())
        if result.ready.get("type") != "ready":
            result.messages.append(result.ready)
            result.ready = None
            return await read_until_closed(ws, result, timeout)
        reader = asyncio.ensure_future(read_until_closed(ws, StreamResult(ready=result.ready), timeout))
        try:
            for offset in range(0, len(audio), chunk_bytes):
                if reader.done():
                    break
                await ws.send(audio[offset : offset + chunk_bytes])
                if realtime_s:
                    await asyncio.sleep(realtime_s)
            if stop and not reader.done():
                await ws.send(json.dumps({"type": "stop"}))
        except ConnectionClosed:
            pass
        return await reader


async def converse(url: str, sends: list, *, timeout: float = 10.0, pause: float = 0.0, **connect_kwargs) -> StreamResult:
    """Send text/bytes messages in order (ignoring a close midway), then collect replies until the close."""
    result = StreamResult()
    async with websockets.connect(url, max_size=None, compression=None, **connect_kwargs) as ws:
        reader = asyncio.ensure_future(read_until_closed(ws, result, timeout))
        try:
            for item in sends:
                await ws.send(item)
                if pause:
                    await asyncio.sleep(pause)
        except ConnectionClosed:
            pass
        return await reader


def at_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample test audio to another rate (what a client at that rate would send)."""
    return samples if rate == target else soxr.resample(samples, rate, target, quality="HQ").astype(np.float32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def wait_ready(base: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()}")
        try:
            if http_status(base + "/readyz") == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")
