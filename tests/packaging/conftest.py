"""Shared helpers for the packaging tests: the repository root and a free loopback port."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, alive, timeout_s: float = 60.0) -> None:
    """Poll /readyz until it answers 200; fail early if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError("the server exited before it became ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/readyz on port {port} did not answer 200 within {timeout_s:.0f} s")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def free_port():
    """A function that returns a free loopback port."""
    return _free_port


@pytest.fixture
def wait_ready():
    """`wait_ready(port, alive)`: poll /readyz until 200; `alive()` says whether the server still runs."""
    return _wait_ready
