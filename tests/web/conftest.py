"""Fixtures for the browser tests: a real `firstspike serve` on loopback and Debian's chromium with a fake microphone.

Chromium is driven by Playwright but never downloaded: we point `executable_path` at /usr/bin/chromium.
Its fake capture device plays a WAV file (looped) as the microphone, so the page runs exactly as it does
for a person: getUserMedia, the AudioWorklet, the websocket, the server's decision.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "web"
SERVER_START_TIMEOUT_S = 30.0

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
GRANT_MICROPHONE = "--use-fake-ui-for-media-stream"  # answers the permission prompt with "allow"
FAKE_MICROPHONE = "--use-fake-device-for-media-stream"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`firstspike serve` in a subprocess (real uvicorn), bound to a free loopback port."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.stream_url = f"ws://127.0.0.1:{self.port}/v1/stream"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "firstspike.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"firstspike serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"firstspike serve did not serve {self.url} within {SERVER_START_TIMEOUT_S} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def running_server(**env: str) -> Iterator[Server]:
    server = Server(env)
    try:
        server.wait_until_serving()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    """The server as shipped: bundled default model, no API key."""
    with running_server() as server:
        yield server


API_KEY = "web-test-key"


@pytest.fixture(scope="module")
def strict_server() -> Iterator[Server]:
    """A server that demands an API key and holds one stream at most, so it can refuse in both ways."""
    with running_server(FIRSTSPIKE_API_KEYS=API_KEY, FIRSTSPIKE_MAX_SESSIONS="1") as server:
        yield server


@pytest.fixture
def launch_browser(chromium: Path, tmp_path: Path):
    """Open headless chromium on a fresh profile.

    `wav`: the fake microphone plays this file (looped); None: no fake device, only the machine's own.
    `grant_microphone`: allow the permission prompt; False leaves headless chromium to deny it.
    """
    from playwright.sync_api import sync_playwright

    stack = contextlib.ExitStack()

    def launch(wav: Path | None, *, grant_microphone: bool = True):
        args = list(CHROMIUM_FLAGS)
        if grant_microphone:
            args.append(GRANT_MICROPHONE)
        if wav is not None:
            args += [FAKE_MICROPHONE, f"--use-file-for-fake-audio-capture={wav}"]
        playwright = stack.enter_context(sync_playwright())
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=args,
            viewport={"width": 1100, "height": 860},
        )
        stack.callback(context.close)
        return context

    with stack:
        yield launch


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

