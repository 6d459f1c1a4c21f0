"""Fixtures for the client tests: a real uvicorn server on loopback and real audio spoken by espeak-ng.

The server runs in a thread of the test process (create_app + uvicorn), serving the bundled model and
demanding an API key, so every client command is exercised with `--token` as a user would run it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TOKEN = "client-test-key"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    port: int
    token: str = TOKEN

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def args(self) -> list[str]:
        return ["--url", self.url, "--token", self.token]


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    import uvicorn

    from firstspike.server.app import create_app
    from firstspike.server.settings import ServerSettings

    port = _free_port()
    app = create_app(ServerSettings(api_keys=[TOKEN], port=port))
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield LiveServer(port)
    uv.should_exit = True
    thread.join(timeout=15)


def speak(word: str, path: Path, voice: str = "en-us") -> Path:
    """A real spoken word at espeak-ng's native 22050 Hz (the server resamples it)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), word], check=True, capture_output=True)
    return path


def write_silence(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sf.write(str(path), (rng.normal(0, 0.002, int(rate * seconds))).astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def audio(tmp_path_factory) -> Path:
    """A small Speech-Commands-style folder: keyword, other word, silence."""
    root = tmp_path_factory.mktemp("audio")
    speak("yes", root / "corpus" / "yes" / "yes_0.wav")
    speak("no", root / "corpus" / "no" / "no_0.wav", voice="en-gb")
    speak("house", root / "corpus" / "house" / "house_0.wav")
    write_silence(root / "corpus" / "_silence_" / "silence_0.wav")
    return root
