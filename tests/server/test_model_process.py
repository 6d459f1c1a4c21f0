"""The model process (`--step-in process`): the same results as the thread, and a child that dies,
hangs or cannot open its model fails only the tick it held, with a clear error."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile as sf

from firstspike.server import model_process
from firstspike.server.engine import INLINE_MAX_ROWS, BatchEngine
from firstspike.server.metrics import ServerMetrics
from firstspike.server.model_process import ModelProcessError
from firstspike.server.models import bundled_model_path, load_models
from server_harness import at_rate, free_port, pcm_s16, start_message, stream_audio, wait_ready

FIRSTSPIKE = str(Path(sys.executable).with_name("firstspike"))
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "yes.wav"
STREAMS = 24  # well over INLINE_MAX_ROWS, so ticks go to the worker or the model process
assert STREAMS > 2 * INLINE_MAX_ROWS


class _Recorder:
    """Everything the engine tells one stream, with values, so two runs can be compared exactly."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1][0] in ("decision", "drained", "error")

    def on_decision(self, frames, label_index, score) -> None:
        self.events.append(("decision", frames, label_index, score))

    def on_scores(self, frames, probs) -> None:
        self.events.append(("scores", frames, probs.tolist()))

    def on_drained(self) -> None:
        self.events.append(("drained",))

    def on_room(self) -> None:
        pass

    def on_model_error(self, message) -> None:
        self.events.append(("error", message))


def _engine(model, step_in: str) -> BatchEngine:
    return BatchEngine(model, 64, max_batch=64, max_wait_ms=5.0, buffer_seconds=10.0,
                       metrics=ServerMetrics(), step_in=step_in)


def _clips(speech) -> list[np.ndarray]:
    """Speech and noise of varied loudness and length, so some streams decide early and some never do."""
    rng = np.random.default_rng(3)
    clips = []
    for i in range(STREAMS):
        samples, rate = speech[["yes", "no", "stop", "left"][i % 4]]
        lead = rng.normal(0, 0.02, rng.integers(0, 8000)).astype(np.float32)
        clips.append(np.concatenate([lead, at_rate(samples, rate, 16000) * rng.uniform(0.3, 1.0)]))
    return clips


async def _stream_all(engine: BatchEngine, clips: list[np.ndarray], seconds: float = 20.0) -> list[_Recorder]:
    """Attach one stream per clip (mixed θ, some with partial scores), write it all, flush, await the ends."""
    recorders = []
    for i, clip in enumerate(clips):
        recorder = _Recorder()
        slot = engine.attach(recorder, 0.8 if i % 2 else 1.0, 5 if i % 3 == 0 else 0)
        assert engine.write(slot, clip) == len(clip)
        engine.flush(slot)
        recorders.append(recorder)
    deadline = asyncio.get_running_loop().time() + seconds
    while not all(r.ended for r in recorders):
        assert asyncio.get_running_loop().time() < deadline, "the engine stopped stepping"
        await asyncio.sleep(0.005)
    return recorders


@pytest.fixture(scope="module")
def model():
    return next(iter(load_models([], None).values()))


def test_the_model_process_gives_every_stream_exactly_what_the_thread_gives(model, speech):
    """Decisions (frame, label, score), partial scores and drained ends, bit for bit."""
    clips = _clips(speech)

    async def run(step_in: str) -> list[list[tuple]]:
        engine = _engine(model, step_in)
        engine.start()
        await engine.wait_ready()
        try:
            return [r.events for r in await _stream_all(engine, clips)]
        finally:
            await engine.stop()

    in_thread, in_process = asyncio.run(run("thread")), asyncio.run(run("process"))
    assert in_process == in_thread
    kinds = {event[0] for events in in_thread for event in events}
    assert {"decision", "scores", "drained"} <= kinds  # the comparison covered every kind of event


@pytest.mark.parametrize("step_in", ["thread", "process"])
def test_a_stream_that_decides_gets_every_partial_score_before_its_decision(model, speech, step_in):
    """Partial scores every 5 frames (`partial_every` 5): each one before the deciding frame arrives,
    and before the decision, even when both fall in one tick. Once, a tick delivered its decisions
    first, and the session, having decided, dropped that tick's partial scores."""
    clips = _clips(speech)

    async def run() -> list[_Recorder]:
        engine = _engine(model, step_in)
        engine.start()
        try:
            return await _stream_all(engine, clips)
        finally:
            await engine.stop()

    decided = [r.events for i, r in enumerate(asyncio.run(run())) if i % 3 == 0 and r.events[-1][0] == "decision"]
    assert decided, "no stream with partial scores decided early"
    for events in decided:
        decision_frame = events[-1][1]
        assert [e[1] for e in events[:-1]] == list(range(5, decision_frame, 5))


def _fails_one_tick_then_recovers(model, speech, signal_number: int, message: str) -> None:
    """Send the model process a signal: the streams of the tick it held hear `message`, and the next
    streams are stepped by a fresh model process."""
    clips = _clips(speech)

    async def scenario():
        engine = _engine(model, "process")
        engine.start()
        await engine.wait_ready()
        try:
            first_pid = engine._process.pid
            os.kill(first_pid, signal_number)
            failed = await _stream_all(engine, clips)
            errors = [r.events[-1][1] for r in failed if r.events[-1][0] == "error"]
            assert errors, "no stream heard that the model process failed"
            assert all(message in e for e in errors), errors

            again = await _stream_all(engine, clips)
            assert all(r.events[-1][0] in ("decision", "drained") for r in again)
            assert engine._process.pid not in (None, first_pid)
            assert engine._process.restarts == 1
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_a_killed_model_process_fails_its_tick_and_the_next_streams_get_a_fresh_one(model, speech):
    _fails_one_tick_then_recovers(model, speech, signal.SIGKILL,
                                  "the model process exited (code -9) while stepping a tick")


def test_a_model_process_that_stops_answering_is_replaced(model, speech, monkeypatch):
    monkeypatch.setattr(model_process, "REPLY_TIMEOUT_S", 0.5)
    _fails_one_tick_then_recovers(model, speech, signal.SIGSTOP, "took over 0.5 s stepping a tick; it was stopped")


def test_a_model_process_that_cannot_open_its_model_says_why(tmp_path):
    """The parent opened the file, then it changed under the server: starting must fail, not hang."""
    path = tmp_path / "model.onnx"
    shutil.copy(bundled_model_path(), path)
    model = next(iter(load_models([str(path)], None).values()))
    path.write_bytes(b"not an onnx model")

    async def scenario():
        engine = _engine(model, "process")
        engine.start()
        try:
            with pytest.raises(ModelProcessError, match=f"could not open {path}"):
                await engine.wait_ready()
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_stopping_the_engine_ends_the_model_process_and_frees_its_shared_memory(model):
    async def scenario():
        engine = _engine(model, "process")
        engine.start()
        await engine.wait_ready()
        process, block = engine._process._process, engine._process._shm.name
        assert Path("/dev/shm", block).exists()
        await engine.stop()
        return process, block

    process, block = asyncio.run(scenario())
    assert not process.is_alive() and process.exitcode == 0
    assert not Path("/dev/shm", block).exists()



@pytest.mark.parametrize("workers", [1, 2])
def test_serve_step_in_process_streams_through_a_model_process_per_worker_and_leaves_nothing_behind(workers):
    """`firstspike serve --step-in process` as a real process tree: each server process has its model
    process, a sample streams to its word, and SIGTERM ends every process and frees every block."""
    port = free_port()
    proc = subprocess.Popen([FIRSTSPIKE, "serve", "--port", str(port), "--step-in", "process",
                             "--workers", str(workers), "--grace-period", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        top = psutil.Process(proc.pid)
        deadline = time.monotonic() + 30  # under --workers, /readyz answers once the first worker is up
        while True:
            servers = [top] if workers == 1 else _spawned_children(top)
            model_processes = [child for server in servers for child in _spawned_children(server)]
            blocks = [_shared_blocks(p) for p in model_processes]
            if len(servers) == workers and len(blocks) == workers and all(len(names) == 1 for names in blocks):
                break
            assert time.monotonic() < deadline, (servers, blocks)
            time.sleep(0.1)

        samples, rate = sf.read(SAMPLE, dtype="float32")
        clip = pcm_s16(at_rate(samples, rate, 16000))
        url = f"ws://127.0.0.1:{port}/v1/stream"

        async def many():  # enough at once that ticks go to the model process
            return await asyncio.gather(*[stream_audio(url, clip, start=start_message(), chunk_bytes=3200,
                                                       realtime_s=0.01) for _ in range(STREAMS)])

        results = asyncio.run(many())
        assert all(r.close_code == 1000 and r.decision["label"] == "yes" for r in results)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    psutil.wait_procs(servers + model_processes, timeout=10)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in servers + model_processes)
    assert not any(Path("/dev/shm", name).exists() for names in blocks for name in names)


def _spawned_children(process: psutil.Process) -> list[psutil.Process]:
    """Children started by multiprocessing's spawn (not its resource tracker)."""
    return [child for child in process.children() if "spawn_main" in " ".join(child.cmdline())]


def _shared_blocks(process: psutil.Process) -> list[str]:
    """Names of the POSIX shared-memory blocks a process has mapped."""
    return sorted({Path(m.path).name for m in process.memory_maps() if m.path.startswith("/dev/shm/")})
