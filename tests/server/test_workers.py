"""`firstspike serve --workers 2` as a real process tree: streams on both workers, whole-server metrics,
a crashed worker replaced, and SIGTERM draining every worker before the supervisor exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

from firstspike import protocol
from server_harness import StreamResult, free_port, pcm_s16, read_until_closed, start_message, stream_audio, wait_ready

FIRSTSPIKE = str(Path(sys.executable).with_name("firstspike"))
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "yes.wav"
STREAMS = 24


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """The server processes under the supervisor (not multiprocessing's resource tracker)."""
    workers = []
    for child in psutil.Process(proc.pid).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.NoSuchProcess:  # died: a zombie not yet reaped by the supervisor, or reaped meanwhile
            continue
    return workers


def _listeners(port: int) -> set[int]:
    return {c.pid for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def two_workers():
    port = free_port()
    proc = subprocess.Popen([FIRSTSPIKE, "serve", "--port", str(port), "--workers", "2", "--grace-period", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)
        _wait_for(lambda: len(_listeners(port)) == 2)
        time.sleep(0.5)  # past the moment each worker's uvicorn installs its signal handlers
        yield proc, base, f"ws://127.0.0.1:{port}/v1/stream"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_workers_share_the_port_and_report_whole_server_metrics(two_workers):
    proc, base, url = two_workers
    samples, rate = sf.read(SAMPLE, dtype="float32")
    assert rate == 16000
    audio = pcm_s16(samples)

    async def many():
        return await asyncio.gather(*[stream_audio(url, audio) for _ in range(STREAMS)])

    results = asyncio.run(many())
    assert all(r.close_code == protocol.CLOSE_NORMAL for r in results)
    assert {r.decision["label"] for r in results} == {"yes"}
    assert len({r.ready["session_id"] for r in results}) == STREAMS
    # Both workers took streams (24 connections all hashed to one of two sockets: p = 2**-23).
    busy = [w for w in _workers(proc) if w.cpu_times().user + w.cpu_times().system > 0]
    assert len(busy) == 2
    # Whichever worker answers /metrics, it counts every worker's sessions.
    assert {_metric(base, "firstspike_sessions_total") for _ in range(6)} == {float(STREAMS)}
    assert _metric(base, "firstspike_sessions_active") == 0.0


def test_a_crashed_worker_is_replaced(two_workers):
    proc, base, url = two_workers
    victim = _workers(proc)[0]
    victim.kill()
    _wait_for(lambda: len(_workers(proc)) == 2 and victim.pid not in {w.pid for w in _workers(proc)})
    _wait_for(lambda: all(asyncio.run(_ready(url)) for _ in range(8)))
    assert proc.poll() is None


async def _ready(url: str) -> bool:
    try:
        result = await stream_audio(url, pcm_s16(np.zeros(1600, np.float32)))
    except OSError:  # a connection caught in the dead worker's backlog is reset
        return False
    return result.close_code == protocol.CLOSE_NORMAL


def test_sigterm_drains_every_worker_then_exits(two_workers):
    proc, base, url = two_workers
    workers = _workers(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    log = proc.stdout.read()
    assert log.count("drained; stopping") == 2, log


def test_ctrl_c_to_the_whole_process_group_drains_rather_than_kills():
    """A terminal's Ctrl-C reaches every process of its group; workers must still drain, once."""
    port = free_port()
    proc = subprocess.Popen([FIRSTSPIKE, "serve", "--port", str(port), "--workers", "2", "--grace-period", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        _wait_for(lambda: len(_listeners(port)) == 2)
        time.sleep(0.5)

        async def lingering_stream():
            from websockets.asyncio.client import connect

            async with connect(f"ws://127.0.0.1:{port}/v1/stream") as ws:
                await ws.send(start_message(threshold=1.0))
                await ws.recv()
                await ws.send(pcm_s16(np.zeros(8000, np.float32)))
                await asyncio.sleep(0.3)
                os.killpg(proc.pid, signal.SIGINT)
                return await read_until_closed(ws, StreamResult(), timeout=15)

        ended = asyncio.run(lingering_stream())
        assert ended.close_code == protocol.CLOSE_GOING_AWAY  # drained: a decision, then 1001
        assert ended.decision is not None and ended.decision["early"] is False
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_workers_exit_when_the_supervisor_is_killed(two_workers):
    proc, base, url = two_workers
    workers = _workers(proc)
    proc.kill()
    proc.wait(timeout=10)
    gone, alive = psutil.wait_procs(workers, timeout=20)
    assert not alive


def test_workers_refuse_a_port_another_server_listens_on():
    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", port))
        other.listen(1)
        done = subprocess.run([FIRSTSPIKE, "serve", "--workers", "2", "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot bind" in done.stderr and "in use" in done.stderr


def test_workers_flag_refuses_nonsense():
    done = subprocess.run([FIRSTSPIKE, "serve", "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "workers" in done.stderr
