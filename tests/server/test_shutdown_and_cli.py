"""`firstspike serve` as a real process: flags and env vars, startup errors, graceful SIGTERM, log lines."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import websockets
from websockets.exceptions import InvalidStatus

from firstspike import protocol
from server_harness import StreamResult, free_port, http_status, pcm_s16, read_until_closed, start_message, wait_ready

FIRSTSPIKE = str(Path(sys.executable).with_name("firstspike"))


def test_importing_the_server_does_not_import_torch():
    code = ("import sys, firstspike.server.app, firstspike.server.cli;"
            "bad = [m for m in ('torch', 'firstspike.model', 'firstspike.export', 'onnx') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_settings_from_env_and_flags(tmp_path, monkeypatch):
    from firstspike.server.settings import ServerSettings

    monkeypatch.setenv("FIRSTSPIKE_MAX_SESSIONS", "7")
    monkeypatch.setenv("FIRSTSPIKE_API_KEYS", "a, b")
    monkeypatch.setenv("FIRSTSPIKE_MODELS", "x=/m/x.onnx,/m/y.onnx")
    settings = ServerSettings()
    assert settings.max_sessions == 7 and settings.api_keys == ["a", "b"]
    assert settings.models == ["x=/m/x.onnx", "/m/y.onnx"]
    assert ServerSettings(max_sessions=3).max_sessions == 3  # a flag beats the env var


def test_every_setting_has_a_flag_whose_help_names_its_env_var_and_default():
    import argparse

    from firstspike.server import cli
    from firstspike.server.settings import ServerSettings

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    assert set(actions) == set(ServerSettings.model_fields)
    for field, action in actions.items():
        assert f"[FIRSTSPIKE_{field.upper()}" in action.help, action.help
    assert "default 2000]" in actions["max_sessions"].help
    assert "default 1 MiB]" in actions["max_message_bytes"].help
    assert "default 0.5]" in actions["buffer_seconds"].help
    ns = parser.parse_args(["--max-sessions", "9", "--api-key", "k1", "--api-key", "k2"])
    assert (ns.max_sessions, ns.api_keys, ns.port) == (9, ["k1", "k2"], None)


def test_bad_model_path_fails_fast_with_a_clear_message(tmp_path):
    missing = tmp_path / "nothing.onnx"
    done = subprocess.run([FIRSTSPIKE, "serve", "--model", str(missing), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not found" in done.stderr
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not onnx")
    done = subprocess.run([FIRSTSPIKE, "serve", "--model", f"g={garbage}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "g=" in done.stderr
    done = subprocess.run([FIRSTSPIKE, "serve", "--max-sessions", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "max_sessions" in done.stderr


def test_sigterm_drains_then_ends_open_streams_with_1001(tmp_path):
    from firstspike.server.models import bundled_model_path

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"ws://127.0.0.1:{port}/v1/stream"
    proc = subprocess.Popen(
        [FIRSTSPIKE, "serve", "--port", str(port), "--grace-period", "1.5", "--log-format", "json",
         "--model", f"a={bundled_model_path()}", "--model", f"b={bundled_model_path()}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_ready(base, proc)
        audio = pcm_s16(np.sin(np.arange(8000) / 6.0) * 0.3)

        async def scenario():
            lingering = await websockets.connect(url)
            await lingering.send(start_message(threshold=1.0, model="b"))
            assert json.loads(await lingering.recv())["model"].startswith("b@")
            await lingering.send(audio)
            finishing = await websockets.connect(url)
            await finishing.send(start_message(threshold=1.0))
            await finishing.recv()
            await finishing.send(audio)

            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.4)
            ready_status = await asyncio.to_thread(http_status, base + "/readyz")
            try:
                await websockets.connect(url)
                refused = None
            except InvalidStatus as err:
                refused = err.response.status_code
            # One stream finishes on its own inside the grace period ...
            await finishing.send(json.dumps({"type": "stop"}))
            done = await read_until_closed(finishing, StreamResult())
            # ... the other keeps quiet and is ended by the server.
            ended = await read_until_closed(lingering, StreamResult(), timeout=10)
            return ready_status, refused, done, ended

        ready_status, refused, done, ended = asyncio.run(scenario())
        assert ready_status == 503
        assert refused == 503
        assert done.close_code == protocol.CLOSE_NORMAL and done.decision["early"] is False
        assert ended.close_code == protocol.CLOSE_GOING_AWAY
        assert ended.decision["early"] is False and ended.decision["frame"] == 50
        assert proc.wait(timeout=20) == 0
        lines = [json.loads(line) for line in proc.stdout.read().splitlines() if line.startswith("{")]
        ends = [line for line in lines if line.get("event") == "session_end"]
        assert sorted(e["close_code"] for e in ends) == [1000, 1001]
        for entry in ends:
            assert {"session", "model", "label", "early", "audio_ms", "wall_ms", "frames", "close_code"} <= set(entry)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bundled_model_words_resolve_unless_a_file_has_that_name(tmp_path, monkeypatch):
    from firstspike.server.models import bundled_model_path, parse_model_spec

    assert parse_model_spec("bundled") == (None, bundled_model_path())
    assert parse_model_spec("fast=bundled-int8") == ("fast", bundled_model_path("bundled-int8"))
    assert bundled_model_path("bundled-int8").name == "default-int8.onnx" and bundled_model_path("bundled-int8").exists()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundled-int8").write_bytes(b"")
    assert parse_model_spec("bundled-int8") == (None, Path("bundled-int8"))
