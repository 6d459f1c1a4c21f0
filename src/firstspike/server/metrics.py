"""Prometheus metrics for one server instance.

Each app gets its own registry, so several servers in one process (tests) never share counters.
Counters are bumped once per batched step, not once per frame, to keep the hot path cheap.
Under `--workers N` (workers.py sets PROMETHEUS_MULTIPROC_DIR before spawning them) every worker
writes its values to shared files and `render` adds them up, so any worker reports the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_STEP_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)  # ticks, decisions


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        r = self.registry
        self.sessions_active = Gauge("firstspike_sessions_active", "open /v1/stream sessions", registry=r,
                                     multiprocess_mode="livesum")
        self.sessions_total = Counter("firstspike_sessions", "/v1/stream sessions started", registry=r)
        self.sessions_rejected = Counter(
            "firstspike_sessions_rejected", "/v1/stream connections refused", ["reason"], registry=r
        )
        self.decisions = Counter(
            "firstspike_decisions", "decisions sent", ["model", "label", "early", "endpointed"], registry=r
        )
        self.frames = Counter("firstspike_frames", "model frames (hops) computed", ["model"], registry=r)
        self.audio_seconds = Counter(
            "firstspike_audio_seconds", "seconds of audio run through the model", ["model"], registry=r
        )
        self.batch_size = Histogram(
            "firstspike_batch_size", "streams per batched model call", ["model"], buckets=_BATCH_BUCKETS, registry=r
        )
        self.step_seconds = Histogram(
            "firstspike_step_seconds", "wall time of one batched model call", ["model"], buckets=_STEP_BUCKETS,
            registry=r,
        )
        # A tick is the scheduler's whole cycle (plan on the loop, compute in the model thread, deliver
        # on the loop). Its seconds per second near 1 mean ticks run back to back: the server is at capacity.
        self.tick_seconds = Histogram(
            "firstspike_tick_seconds", "wall time of one scheduler tick, from planning to delivering results",
            ["model"], buckets=_SECONDS_BUCKETS, registry=r,
        )
        # The same busy share, averaged over the last few seconds (server/load_meter.py): above
        # `max_load` the server refuses new streams.
        self.scheduler_load = Gauge(
            "firstspike_scheduler_load", "share of the last few seconds the batching scheduler was busy",
            ["model"], registry=r, multiprocess_mode="max",
        )
        self.decision_seconds = Histogram(
            "firstspike_decision_processing_seconds",
            "server time from receiving the deciding chunk to sending the decision",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged)
