"""The batching scheduler on its own: whatever happens to the streams, the scheduler keeps stepping."""

from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from firstspike import protocol
from firstspike.server.audio_input import AudioFormat
from firstspike.server.context import ServerContext
from firstspike.server.engine import INLINE_MAX_ROWS, BatchEngine
from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import load_models
from firstspike.server.session import StreamSession
from firstspike.server.settings import ServerSettings


class _Listener:
    """Records what the engine tells one stream."""

    def __init__(self) -> None:
        self.events: list[str] = []

    @property
    def ended(self) -> bool:
        return any(event in ("decision", "drained") or event.startswith("error") for event in self.events)

    def on_decision(self, frames, label_index, score) -> None:
        self.events.append("decision")

    def on_scores(self, frames, probs) -> None:
        self.events.append("scores")

    def on_drained(self) -> None:
        self.events.append("drained")

    def on_room(self) -> None:
        self.events.append("room")

    def on_model_error(self, message) -> None:
        self.events.append(f"error: {message}")


_MODEL = None


def _engine(max_wait_ms: float, capacity: int = 4, max_batch: int = 64, buffer_seconds: float = 2.0) -> BatchEngine:
    global _MODEL
    if _MODEL is None:
        _MODEL = next(iter(load_models([], None).values()))
    return BatchEngine(_MODEL, capacity, max_batch=max_batch, max_wait_ms=max_wait_ms,
                       buffer_seconds=buffer_seconds, metrics=ServerMetrics())


async def _until(condition, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the engine stopped stepping"
        await asyncio.sleep(0.005)


def test_a_stream_that_ends_while_its_tick_waits_leaves_the_scheduler_running():
    """The only ready stream detaches during the max-wait pause: the tick finds nobody, and the next audio is stepped.

    Once, this emptied tick raised inside the scheduler task, and from then on no stream of that model
    was ever stepped again: every session waited for the idle timeout.
    """

    async def scenario():
        engine = _engine(max_wait_ms=200.0)
        engine.start()
        hop = np.zeros(engine.spc, np.float32)
        ending, staying = _Listener(), _Listener()
        ending_slot = engine.attach(ending, 1.0, 0)
        staying_slot = engine.attach(staying, 1.0, 0)
        try:
            engine.write(staying_slot, hop)
            await _until(lambda: engine.frames_of(staying_slot) == engine.hops_per_call)  # a tick just ran
            engine.write(ending_slot, hop)  # ready, so the scheduler waits out max_wait before its tick
            await asyncio.sleep(0.05)
            engine.detach(ending_slot)  # ... and the stream ends during that wait
            await asyncio.sleep(0.3)
            assert not engine._task.done(), engine._task.exception()
            engine.write(staying_slot, hop)
            await _until(lambda: engine.frames_of(staying_slot) == 2 * engine.hops_per_call)
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_a_small_tick_runs_on_the_loop_thread_and_a_big_one_on_the_worker(monkeypatch):
    """A handful of streams skip the two thread hand-offs; more keep the loop free while the model runs."""

    async def scenario():
        engine = _engine(max_wait_ms=0.0, capacity=INLINE_MAX_ROWS + 1)
        engine.start()
        hop = np.zeros(engine.spc, np.float32)
        ticks: list[tuple[int, bool]] = []  # (rows, computed on the loop thread?)
        real_compute = engine._compute
        loop_thread = threading.get_ident()

        def compute_noting_thread(tick):
            ticks.append((len(tick.rows), threading.get_ident() == loop_thread))
            return real_compute(tick)

        monkeypatch.setattr(engine, "_compute", compute_noting_thread)
        slots = [engine.attach(_Listener(), 1.0, 0) for _ in range(INLINE_MAX_ROWS + 1)]
        try:
            for many in (INLINE_MAX_ROWS, INLINE_MAX_ROWS + 1):
                for slot in slots[:many]:  # written in one go: no tick can start in between
                    engine.write(slot, hop)
                await _until(lambda: engine.frames_of(slots[many - 1]) > 0)
            assert ticks == [(INLINE_MAX_ROWS, True), (INLINE_MAX_ROWS + 1, False)]
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_a_failure_outside_the_model_call_fails_that_ticks_streams_and_the_scheduler_goes_on(monkeypatch):
    """Planning a tick is not expected to fail, but if it does, its streams hear an error and the rest carry on."""

    async def scenario():
        engine = _engine(max_wait_ms=0.0)
        engine.start()
        hop = np.zeros(engine.spc, np.float32)
        listener = _Listener()
        slot = engine.attach(listener, 1.0, 0)
        real_plan = engine._plan
        broken = {"once": True}

        def plan_failing_once(rows, audio_out=None):
            if broken.pop("once", False):
                raise RuntimeError("planning failed")
            return real_plan(rows, audio_out)

        monkeypatch.setattr(engine, "_plan", plan_failing_once)
        try:
            engine.write(slot, hop)
            await _until(lambda: listener.events)
            assert listener.events == ["error: planning failed"]
            other = _Listener()
            other_slot = engine.attach(other, 1.0, 0)
            engine.write(other_slot, hop)
            await _until(lambda: engine.frames_of(other_slot) == engine.hops_per_call)
            assert not engine._task.done()
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_readiness_reports_a_model_whose_scheduler_has_stopped():
    """Belt and braces: should a scheduler ever stop, /readyz's source of truth says so and names the model."""

    async def scenario():
        ctx = ServerContext(ServerSettings(), load_models([], None))
        await ctx.start()
        try:
            assert ctx.ready and ctx.stalled_models == []
            engine = next(iter(ctx.engines.values()))
            engine._task.cancel()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert not ctx.ready and ctx.stalled_models == list(ctx.engines)
        finally:
            await ctx.stop()

    asyncio.run(scenario())


@asynccontextmanager
async def _stream_on_a_stopped_scheduler(**settings):
    """A server context whose model never steps again, holding one 16 kHz stream the sweeper watches."""
    models = load_models([], None)
    ctx = ServerContext(ServerSettings(**settings), models)
    await ctx.start()
    model = next(iter(models.values()))
    session = StreamSession("s1", model, ctx.engines[model.name], AudioFormat("pcm_s16le", 16000, 1), 1.0, False)
    ctx.sessions[session.id] = session
    ctx.engines[model.name]._task.cancel()
    try:
        yield session
    finally:
        session.close()
        await ctx.stop()


def test_an_ended_stream_the_model_never_finishes_gets_an_internal_error_not_a_hang():
    """With the scheduler gone, a stopped stream's client hears 1011 after the idle limit instead of waiting forever."""

    async def scenario():
        async with _stream_on_a_stopped_scheduler(idle_timeout_s=0.4) as session:
            session.feed_nowait(b"\x01\x00" * 1600, 0.0)
            await session.stop(0.0)
            kind, failure = await asyncio.wait_for(session.events.get(), 3.0)
            assert kind == "error" and failure.code == protocol.ERR_INTERNAL
            assert failure.close_code == 1011 and "did not finish" in failure.message

    asyncio.run(scenario())


_operations = st.lists(
    st.one_of(
        st.tuples(st.just("attach"), st.sampled_from([1.0, 1.0, 1e-6])),  # θ = 1 never fires, 1e-6 at once
        st.tuples(st.just("write"), st.integers(0, 3), st.sampled_from([1, 1, 2, 7, 30])),  # stream, hops
        st.tuples(st.just("flush"), st.integers(0, 3)),
        st.tuples(st.just("detach"), st.integers(0, 3)),
        st.tuples(st.just("sleep"), st.sampled_from([1, 3, 8, 15])),  # ms: inside a tick's max-wait pause, or past it
    ),
    max_size=25,
).map(lambda operations: [("attach", 1.0), ("attach", 1.0), *operations])  # a neighbour makes ticks pace


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# What the search found against the old scheduler: 30 hops are three ticks; the stream vanishes in the pause.
@example(operations=[("attach", 1.0), ("attach", 1.0), ("write", 0, 30), ("sleep", 1), ("detach", 0)], max_wait_ms=5.0)
@given(operations=_operations, max_wait_ms=st.sampled_from([0.0, 5.0, 20.0]))
def test_any_sequence_of_stream_events_keeps_the_scheduler_stepping_and_ends_each_flushed_stream_once(
    operations, max_wait_ms
):
    """Streams attach, write, end and vanish in any order, with ticks paced or not and batches capped.

    Afterwards the scheduler is alive, a stream that ended its audio hears exactly one ending (a decision
    or drained), a detached stream hears nothing more, and a new stream is still stepped.
    """

    async def scenario():
        engine = _engine(max_wait_ms, capacity=6, max_batch=2, buffer_seconds=0.2)  # small: room runs out
        engine.start()
        streams: list[tuple[int, _Listener]] = []
        flushed: list[_Listener] = []
        detached: dict[int, int] = {}  # id(listener) → events heard before its detach
        rng = np.random.default_rng(0)
        try:
            for operation in operations:
                kind = operation[0]
                if kind == "attach" and engine._free:
                    listener = _Listener()
                    streams.append((engine.attach(listener, operation[1], 0), listener))
                elif kind == "sleep":
                    await asyncio.sleep(operation[1] / 1000)
                elif kind != "attach" and streams:
                    slot, listener = streams[operation[1] % len(streams)]
                    if id(listener) in detached:
                        continue
                    if kind == "write" and listener not in flushed:
                        engine.write(slot, rng.standard_normal(operation[2] * engine.spc).astype(np.float32) * 0.1)
                    elif kind == "flush" and listener not in flushed:
                        # what a session does: the last partial call is padded out before the flush
                        pending = int(engine._tail[slot] - engine._head[slot]) % engine.spc
                        if pending:
                            engine.write(slot, np.zeros(engine.spc - pending, np.float32))
                        engine.flush(slot)
                        flushed.append(listener)
                    elif kind == "detach":
                        engine.detach(slot)
                        detached[id(listener)] = len(listener.events)
                await asyncio.sleep(0)
            live_flushed = [listener for listener in flushed if id(listener) not in detached]
            await _until(lambda: all(listener.ended for listener in live_flushed))
            await asyncio.sleep(0.05)  # anything still in flight lands now
            assert engine.running
            for listener in live_flushed:
                endings = [e for e in listener.events if e in ("decision", "drained") or e.startswith("error")]
                assert len(endings) == 1, listener.events
            for _, listener in streams:
                if id(listener) in detached:
                    assert len(listener.events) == detached[id(listener)], "a detached stream heard more"
            for slot, listener in streams:
                if id(listener) not in detached:
                    engine.detach(slot)
            fresh = _Listener()
            slot = engine.attach(fresh, 1.0, 0)
            engine.write(slot, np.zeros(engine.spc, np.float32))
            await _until(lambda: engine.frames_of(slot) == engine.hops_per_call)
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_a_stream_the_model_stays_behind_hears_overloaded_not_idle():
    """While its audio waits for room the server reads nothing from the client: after the idle limit
    that is the server's fault (1013, try again), not the client's silence (4008)."""

    async def scenario():
        async with _stream_on_a_stopped_scheduler(idle_timeout_s=0.4, buffer_seconds=0.05) as session:
            assert session.feed_nowait(b"\x01\x00" * 16000, 0.0) is False  # 1 s into a 50 ms buffer
            assert session.backlogged_since is not None
            kind, failure = await asyncio.wait_for(session.events.get(), 3.0)
            assert kind == "error" and failure.code == protocol.ERR_OVERLOADED and failure.close_code == 1013

    asyncio.run(scenario())
