"""The batching scheduler on its own: whatever happens to the streams, the scheduler keeps stepping."""

from __future__ import annotations

import asyncio

import numpy as np

from firstspike.server.engine import BatchEngine
from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import load_models


class _Listener:
    """Records what the engine tells one stream."""

    def __init__(self) -> None:
        self.events: list[str] = []

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


def _engine(max_wait_ms: float) -> BatchEngine:
    model = next(iter(load_models([], None).values()))
    return BatchEngine(model, 4, max_batch=64, max_wait_ms=max_wait_ms, buffer_seconds=2.0, metrics=ServerMetrics())


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

        def plan_failing_once(rows):
            if broken.pop("once", False):
                raise RuntimeError("planning failed")
            return real_plan(rows)

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
    from firstspike.server.context import ServerContext
    from firstspike.server.settings import ServerSettings

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


def test_an_ended_stream_the_model_never_finishes_gets_an_internal_error_not_a_hang():
    """With the scheduler gone, a stopped stream's client hears 1011 after the idle limit instead of waiting forever."""
    from firstspike import protocol
    from firstspike.server.audio_input import AudioFormat
    from firstspike.server.context import ServerContext
    from firstspike.server.session import StreamSession
    from firstspike.server.settings import ServerSettings

    async def scenario():
        models = load_models([], None)
        ctx = ServerContext(ServerSettings(idle_timeout_s=0.4), models)
        await ctx.start()
        model = next(iter(models.values()))
        session = StreamSession("s1", model, ctx.engines[model.name], AudioFormat("pcm_s16le", 16000, 1), 1.0, False)
        ctx.sessions[session.id] = session
        try:
            ctx.engines[model.name]._task.cancel()  # the model will never step this stream's audio
            session.feed_nowait(b"\x01\x00" * 1600, 0.0)
            await session.stop(0.0)
            kind, failure = await asyncio.wait_for(session.events.get(), 3.0)
            assert kind == "error" and failure.code == protocol.ERR_INTERNAL
            assert failure.close_code == 1011 and "did not finish" in failure.message
        finally:
            session.close()
            await ctx.stop()

    asyncio.run(scenario())
