"""The bench summary's accounting of streams held, and of when the ones that were not fell behind."""

from __future__ import annotations

from firstspike.client.bench_cli import _describe_fell_behind
from firstspike.client.bench_summary import summarise
from firstspike.client.connection import OK
from firstspike.client.load import CUT

TOLERANCE_MS = 100.0


def _record(t: float, slot: int, outcome: str = OK, latency: float | None = 12.0, lag: float = 5.0) -> tuple:
    # (end_time_s, slot, outcome, failure_key, early, decision_latency_ms, audio_ms, processing_ms,
    #  max_send_lag_ms, audio_ms_sent), as client/load.py records a session
    key = "" if outcome in (OK, CUT) else "closed"
    return (t, slot, outcome, key, False, latency, None, 1.0, lag, 8000.0)


def _summary(records: list[tuple], streams: int) -> dict:
    return summarise(records, [[(0.0, streams)]], streams, ramp_s=0.0, tolerance_ms=TOLERANCE_MS, server=None,
                     generator_cpu_percent=10.0, wall_s=30.0, interrupted=False, worker_errors=[])


def test_fell_behind_names_the_half_seconds_that_lost_streams():
    records = [
        _record(3.1, 0), _record(3.2, 1),  # kept pace
        _record(24.1, 2, latency=160.0), _record(24.4, 3, latency=120.0),  # one stall, two late decisions
        _record(24.3, 4, lag=130.0),  # the same stall, seen as a chunk sent late
        _record(27.9, 5, outcome="protocol", latency=None),  # a failure also costs its stream
        _record(30.0, 6, outcome=CUT, latency=None, lag=250.0),  # cut at the end, after falling behind
        _record(30.0, 7, outcome=CUT, latency=None),  # cut at the end while keeping pace: held
    ]
    summary = _summary(records, streams=8)

    assert summary["streams_held"] == 3 and summary["streams_not_held"] == 5
    assert summary["fell_behind"] == [
        {"t": 24.0, "sessions": 3, "failed": 0, "worst_ms": 160.0},
        {"t": 27.5, "sessions": 1, "failed": 1, "worst_ms": 5.0},
        {"t": 30.0, "sessions": 1, "failed": 0, "worst_ms": 250.0},
    ]
    # Every stream that was not held is in exactly one of those moments.
    assert sum(row["sessions"] for row in summary["fell_behind"]) == summary["streams_not_held"]


def test_a_run_that_kept_pace_fell_behind_nowhere():
    summary = _summary([_record(1.0 + i, i) for i in range(5)], streams=5)
    assert summary["streams_held"] == 5 and summary["fell_behind"] == []


def test_the_printed_line_keeps_the_worst_moments_in_time_order():
    rows = [{"t": 2.0, "sessions": 1, "failed": 0, "worst_ms": 110.0},
            {"t": 9.5, "sessions": 40, "failed": 0, "worst_ms": 310.0},
            {"t": 11.0, "sessions": 3, "failed": 0, "worst_ms": 150.0},
            {"t": 24.0, "sessions": 12, "failed": 1, "worst_ms": 180.0},
            {"t": 29.5, "sessions": 2, "failed": 0, "worst_ms": 120.0}]
    line = _describe_fell_behind(rows, most=3)
    assert line == ("9.5 s: 40 sessions (worst 310 ms); 11 s: 3 sessions (worst 150 ms); "
                    "24 s: 12 sessions (worst 180 ms); and 2 more half-seconds")
    assert _describe_fell_behind(rows[:1]) == "2 s: 1 session (worst 110 ms)"
