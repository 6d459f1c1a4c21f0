"""A model process: a tick's model calls run in a second process, where they do not wait on the loop's GIL.

In one process the event loop (Python, which holds the GIL) and the model thread (onnxruntime, which
needs the GIL back around every call) take turns; on a busy two-core server the same calls cost 1.3-1.6x
what they cost alone (docs/benchmarks.md, `bench/step_beside_gil.py`). Here a child process opens its
own session of the same model file and does nothing but step ticks (server/tick_compute.py).

A tick's arrays travel through one shared-memory block that each side reads and writes in place; the
pipe carries only a few bytes to start a tick and the short lists of decisions and partial scores
back. One tick is out at a time (the scheduler awaits each), so one block suffices. The parent keeps
every slot array, so a slot re-used while its tick is out is caught by the generation check in
`BatchEngine._apply`, exactly as with the thread.

A child that dies or stops answering fails only the tick it held (its streams get a model error);
the next tick starts a fresh child.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path

import numpy as np

from firstspike.runtime import open_step_session
from firstspike.server.models import LoadedModel
from firstspike.server.tick_compute import Outcome, Tick, TickStepper

log = logging.getLogger("firstspike.server.model_process")

# A tick takes milliseconds; a child this late is stuck, and its streams are better failed than held.
REPLY_TIMEOUT_S = 10.0
# Spawning a clean interpreter and opening onnxruntime takes a second or two; this is far past that.
START_TIMEOUT_S = 60.0


class ModelProcessError(RuntimeError):
    """The model process died, hung or could not start."""


@dataclass(frozen=True)
class TickShape:
    """The largest tick the block holds: the engine's max_batch rows, ROUNDS_PER_TICK calls each."""

    rows: int
    rounds: int
    samples_per_call: int
    state_size: int
    labels: int

    def fields(self) -> list[tuple[str, tuple[int, ...], type]]:
        """Every array of the block, in order: the tick going in, then its outcome coming back."""
        b, s, k = self.rows, self.state_size, self.labels
        return [
            ("audio", (self.rounds, b, self.samples_per_call), np.float32),
            ("state", (b, s), np.float32),
            ("threshold", (b,), np.float32),
            ("frames", (b,), np.int64),
            ("calls", (b,), np.int64),
            ("partial_every", (b,), np.int64),
            ("next_partial", (b,), np.int64),
            ("rows", (b,), np.int64),
            ("generations", (b,), np.int64),
            ("out_rows", (b,), np.int64),
            ("out_generations", (b,), np.int64),
            ("out_state", (b, s), np.float32),
            ("out_probs", (b, k), np.float32),
            ("out_frames", (b,), np.int64),
            ("out_next_partial", (b,), np.int64),
            ("out_fired", (b,), np.bool_),
        ]

    def nbytes(self) -> int:
        return sum(_aligned(int(np.prod(shape)) * np.dtype(dtype).itemsize) for _, shape, dtype in self.fields())


class TickBlock:
    """Named numpy views over the shared block; both processes lay it out from the same TickShape."""

    def __init__(self, buffer: memoryview, shape: TickShape):
        self.arrays: dict[str, np.ndarray] = {}
        offset = 0
        for name, dims, dtype in shape.fields():
            size = int(np.prod(dims)) * np.dtype(dtype).itemsize
            self.arrays[name] = np.ndarray(dims, dtype, buffer=buffer, offset=offset)
            offset += _aligned(size)

    def put_tick(self, tick: Tick) -> None:
        a, n = self.arrays, len(tick.rows)
        if not np.may_share_memory(tick.audio, a["audio"]):  # the engine gathers it here already
            a["audio"][: tick.audio.shape[0], :n] = tick.audio
        a["state"][:n] = tick.state
        for name in ("threshold", "frames", "calls", "partial_every", "next_partial", "rows", "generations"):
            a[name][:n] = getattr(tick, name)

    def get_tick(self, n: int, rounds: int) -> Tick:
        """The tick as the child steps it: views of the block (no one reads the inputs once it is stepped)."""
        a = self.arrays
        return Tick(rows=a["rows"][:n], generations=a["generations"][:n], calls=a["calls"][:n],
                    audio=a["audio"][:rounds, :n], state=a["state"][:n], threshold=a["threshold"][:n],
                    frames=a["frames"][:n], partial_every=a["partial_every"][:n], next_partial=a["next_partial"][:n])

    def put_outcome(self, outcome: Outcome) -> None:
        a, n = self.arrays, len(outcome.rows)
        for name in ("rows", "generations", "state", "probs", "frames", "next_partial", "fired"):
            a[f"out_{name}"][:n] = getattr(outcome, name)

    def get_outcome(self, n: int, reply: tuple) -> Outcome:
        """The child's outcome as views of the block: valid until the next tick is sent, and the engine
        applies each outcome before it plans the next tick."""
        a = self.arrays
        decisions, partials, calls, steps = reply
        return Outcome(rows=a["out_rows"][:n], generations=a["out_generations"][:n], state=a["out_state"][:n],
                       probs=a["out_probs"][:n], frames=a["out_frames"][:n], next_partial=a["out_next_partial"][:n],
                       fired=a["out_fired"][:n], decisions=decisions, partials=partials, calls=calls, steps=steps)


class ModelProcess:
    """The parent's handle on one model's child: starts it, hands it ticks, restarts it when it fails."""

    def __init__(self, model: LoadedModel, shape: TickShape, intra_op_threads: int = 1):
        self.model = model
        self.shape = shape
        self.intra_op_threads = intra_op_threads
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")  # a clean interpreter: no loop, no threads
        self._shm: SharedMemory | None = None  # made at start, freed at close
        self._block: TickBlock | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = False

    @property
    def audio_block(self) -> np.ndarray:
        """The shared [rounds, rows, samples_per_call] audio array, for the engine to gather a tick's audio into."""
        return self._block.arrays["audio"]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Spawn the child; `wait_ready` waits for its model to open."""
        if self._shm is None:
            self._shm = SharedMemory(create=True, size=self.shape.nbytes())
            self._block = TickBlock(self._shm.buf, self.shape)
        parent_end, child_end = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, name=f"firstspike-model-{self.model.name}", daemon=True,
            args=(child_end, self._shm.name, self.shape, str(self.model.path), self.intra_op_threads),
        )
        self._process.start()
        child_end.close()
        self._conn = parent_end
        self._ready = False

    async def wait_ready(self) -> None:
        if self._process is None:
            self.start()
        if self._ready:
            return
        reply = await self._reply(START_TIMEOUT_S, "opening its model")
        if reply[0] != "ready":
            self._discard()
            raise ModelProcessError(f"the model process could not open {self.model.path}: {reply[1]}")
        self._ready = True
        log.info("model %s: stepping in process %d", self.model.name, self.pid)

    async def compute(self, tick: Tick) -> Outcome:
        """Step one tick in the child. On any failure of the child, raise, and start a fresh one next time."""
        if self._process is None:
            self.restarts += 1
            self.start()
        await self.wait_ready()
        n = len(tick.rows)
        self._block.put_tick(tick)
        try:
            self._conn.send(("tick", n, tick.audio.shape[0]))
        except OSError:  # it died between ticks
            code = self._discard()
            raise ModelProcessError(f"the model process exited (code {code}) while stepping a tick") from None
        reply = await self._reply(REPLY_TIMEOUT_S, "stepping a tick")
        if reply[0] == "error":
            raise RuntimeError(reply[1])  # the model call failed; the child itself is fine
        return self._block.get_outcome(n, reply[1:])

    async def _reply(self, timeout: float, doing: str) -> tuple:
        """Wait for the child's next message without a thread: the pipe's fd on the event loop."""
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self._conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            try:
                await asyncio.wait_for(readable, timeout)
            finally:
                loop.remove_reader(fd)  # before any _discard closes the fd
            return self._conn.recv()
        except asyncio.TimeoutError:
            self._discard()
            raise ModelProcessError(f"the model process took over {timeout:g} s {doing}; it was stopped") from None
        except (EOFError, OSError):
            code = self._discard()
            raise ModelProcessError(f"the model process exited (code {code}) while {doing}") from None
        except asyncio.CancelledError:
            self._discard()  # its reply would answer the wrong tick
            raise

    def _discard(self) -> int | None:
        """Stop the current child (if it still runs) and forget it; the next tick spawns another."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        log.error("model %s: model process %d ended (exit code %s); the next tick starts another",
                  self.model.name, process.pid, process.exitcode)
        return process.exitcode

    def close(self) -> None:
        """Ask the child to leave, then free the block."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._ready = None, None, False
        if conn is not None:
            try:
                conn.send(None)
            except OSError:
                pass
            conn.close()
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if self._shm is not None:
            self._block = None  # its views must go before the block can close
            self._shm.close()
            self._shm.unlink()
            self._shm = None


def _serve(conn: Connection, shm_name: str, shape: TickShape, model_path: str, intra_op_threads: int) -> None:
    """The child: open the model, then step every tick the parent sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides when to stop
    # A spawned child shares the parent's resource tracker, so attaching registers nothing new; the
    # parent unlinks the block when it closes.
    shm = SharedMemory(name=shm_name)
    block = TickBlock(shm.buf, shape)
    try:
        session, info = open_step_session(Path(model_path), intra_op_threads=intra_op_threads)
        stepper = TickStepper(LoadedModel(info.model_name, Path(model_path), session, info, info.threshold))
    except Exception as err:  # reported to the parent, which fails its start with this message
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            break
        if message is None:
            break
        _, n, rounds = message
        try:
            outcome = stepper.compute(block.get_tick(n, rounds))
            block.put_outcome(outcome)
            conn.send(("ok", outcome.decisions, outcome.partials, outcome.calls, outcome.steps))
        except Exception as err:
            conn.send(("error", f"{type(err).__name__}: {err}"))
    del block
    shm.close()


def _aligned(size: int) -> int:
    return (size + 63) // 64 * 64
