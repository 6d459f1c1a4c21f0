"""What every request handler of one server shares: settings, models, engines, metrics, open sessions.

It also owns the two policies that cut across endpoints: who may connect (API keys, origins) and
the shutdown drain (refuse new work, give open streams a grace period, then end them).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sys
import time
from typing import TYPE_CHECKING

from firstspike import protocol
from firstspike.server.admission import LoadAdmission
from firstspike.server.engine import BatchEngine
from firstspike.server.metrics import ServerMetrics
from firstspike.server.models import LoadedModel
from firstspike.server.settings import ServerSettings

if TYPE_CHECKING:
    from firstspike.server.session import StreamSession

log = logging.getLogger("firstspike.server")

GIL_SWITCH_INTERVAL_S = 0.0001


class ServerContext:
    def __init__(self, settings: ServerSettings, models: dict[str, LoadedModel]):
        self.settings = settings
        self.models = models
        self.metrics = ServerMetrics()
        self.engines = {
            name: BatchEngine(
                model,
                settings.max_sessions,
                max_batch=settings.max_batch,
                max_wait_ms=settings.max_wait_ms,
                buffer_seconds=settings.buffer_seconds,
                metrics=self.metrics,
                step_in=settings.step_in,
                intra_op_threads=settings.intra_op_threads,
            )
            for name, model in models.items()
        }
        self.admission = LoadAdmission(settings.max_load)
        self.sessions: dict[str, "StreamSession"] = {}
        self.connections = 0  # accepted /v1/stream sockets, counted before `start` arrives
        self.draining = False
        self.started = False
        # Clip classification competes with live streams for the same cores: let few run at once.
        self.classify_slots = asyncio.Semaphore(2)
        self._sweeper: asyncio.Task | None = None

    @property
    def stalled_models(self) -> list[str]:
        """Models whose scheduler has stopped after starting: their streams would never be stepped."""
        return [name for name, engine in self.engines.items() if self.started and not engine.running]

    @property
    def load(self) -> float:
        """The busiest model scheduler's share of the last few seconds spent in ticks (server/load_meter.py)."""
        return max((engine.load.value() for engine in self.engines.values()), default=0.0)

    def admits_another_stream(self, load: float) -> bool:
        """Room for one stream more at `max_load`, given the current `load` (server/admission.py)?
        Else it would slow every stream."""
        return self.admission.admits(self.connections, load, time.perf_counter())

    @property
    def admits_up_to(self) -> int:
        """Streams the server takes now: the session limit, or the load's cap where that is lower."""
        cap, limit = self.admission.cap, self.settings.max_sessions
        return limit if cap is None else min(limit, int(cap))

    def report_load(self) -> None:
        """Bring the load gauges up to date (they decay while idle, with no tick to update them)."""
        for name, engine in self.engines.items():
            self.metrics.scheduler_load.labels(model=name).set(round(engine.load.value(), 4))

    @property
    def ready(self) -> bool:
        return self.started and not self.draining and not self.stalled_models

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        # The model thread needs the GIL back after every onnxruntime call (to wrap its outputs).
        # With CPython's default 5 ms switch interval it can wait that long behind the event loop's
        # Python work, up to ten times per tick: a convoy that adds tens of ms of latency while the
        # CPU idles. A short interval keeps handoffs prompt for a few % of switching overhead.
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
        for engine in self.engines.values():
            engine.start()
        for engine in self.engines.values():
            await engine.wait_ready()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_idle(), name="idle-sweeper")
        self.started = True

    async def stop(self) -> None:
        self.draining = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for engine in self.engines.values():
            await engine.stop()

    async def drain(self, grace_s: float) -> None:
        """Refuse new sessions, wait up to `grace_s` for open ones, then end the rest (decision + 1001)."""
        self.draining = True
        log.info("draining: %d open session(s), grace period %.1f s", len(self.sessions), grace_s)
        deadline = time.monotonic() + grace_s
        while self.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for session in list(self.sessions.values()):
            session.events.put_nowait(("shutdown", None))
        deadline = time.monotonic() + max(2.0, self.settings.send_timeout_s)
        while (self.sessions or self.connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def _sweep_idle(self) -> None:
        """Fail streams whose client has gone quiet; one timer for all sessions, not one per message.

        While a stream's audio waits for room in the model's buffer, the server is not reading its
        socket: that silence is the server's, so a stream that stays behind for the idle limit hears
        `overloaded` (1013, try again), not `idle_timeout`. A stream that has ended (stop, end of
        speech) waits only for the model to step the audio it already holds, a matter of milliseconds
        to seconds; one still undecided after the idle limit will never be, and its client hears an
        internal error instead of waiting forever."""
        limit = self.settings.idle_timeout_s
        period = min(0.5, limit / 4)
        while True:
            await asyncio.sleep(period)
            self.report_load()  # the same clock keeps every worker's load gauge current
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if session.finished:
                    continue
                if session.backlogged_since is not None:
                    if now - session.backlogged_since > limit:
                        log.warning("session %s: the model stayed %.1f s behind its audio", session.id, limit)
                        session.fail(protocol.ERR_OVERLOADED,
                                     f"the server fell {limit:g} s behind this stream's audio; try again")
                elif not session.stopping:
                    if now - session.last_activity > limit:
                        session.fail(protocol.ERR_IDLE_TIMEOUT, f"no message from the client for {limit:g} s")
                elif now - session.stopping_since > limit:
                    log.error("session %s: no decision %.1f s after its audio ended", session.id, limit)
                    session.fail(protocol.ERR_INTERNAL, f"the model did not finish the stream within {limit:g} s of its end")

    # -- policy ------------------------------------------------------------------------------
    def authorised(self, headers, query_params) -> bool:
        keys = self.settings.api_keys
        if not keys:
            return True
        offered = query_params.get("token")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            offered = auth[7:].strip()
        if not offered:
            return False
        return any(hmac.compare_digest(offered.encode(), key.encode()) for key in keys)

    def origin_allowed(self, headers) -> bool:
        allowed = self.settings.allowed_origins
        origin = headers.get("origin")
        return not allowed or origin is None or origin in allowed or "*" in allowed
