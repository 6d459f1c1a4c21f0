"""Fold the workers' session records and the server samples into one benchmark summary.

A stream (slot) is *held at real time* when none of its sessions failed, no chunk was sent more than
`tolerance_ms` behind its real-time schedule, and every decision arrived within `tolerance_ms` of the
chunk that held its deciding frame (or of the stop message): i.e. neither the generator nor the server
fell a chunk behind.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from firstspike.client.connection import OK
from firstspike.client.load import CUT
from firstspike.client.report import percentiles
from firstspike.client.server_stats import ServerStats

(T, SLOT, OUTCOME, KEY, EARLY, LATENCY, AUDIO_MS, PROCESSING, LAG, SENT_MS) = range(10)
BUCKET_S = 0.5


def merge_timelines(timelines: list[list[tuple[float, int]]]) -> list[tuple[float, int]]:
    """Sum the workers' active-session counts per half-second bucket (last sample of each worker wins)."""
    per_bucket: dict[int, dict[int, int]] = defaultdict(dict)
    for worker, samples in enumerate(timelines):
        for t, active in samples:
            per_bucket[int(t // BUCKET_S)][worker] = active
    return [(round(b * BUCKET_S, 2), sum(v.values())) for b, v in sorted(per_bucket.items()) if b >= 0]


def _active_at(timeline: list[tuple[float, int]], t: float) -> int:
    bucket = round(int(t // BUCKET_S) * BUCKET_S, 2)
    best = 0
    for tb, active in timeline:
        if tb > bucket:
            break
        best = active
    return best


def summarise(
    records: list[tuple], timelines: list[list[tuple[float, int]]], streams: int, ramp_s: float,
    tolerance_ms: float, server: ServerStats | None, generator_cpu_percent: float | None,
    wall_s: float, interrupted: bool, worker_errors: list[str], chunk_ms: float = 100.0,
) -> dict:
    finished = [r for r in records if r[OUTCOME] != CUT]
    ok = [r for r in finished if r[OUTCOME] == OK]
    failed = [r for r in finished if r[OUTCOME] != OK]
    early = [r for r in ok if r[EARLY]]
    late = [r for r in ok if not r[EARLY]]
    timeline = merge_timelines(timelines)

    by_slot: dict[int, list[tuple]] = defaultdict(list)
    for r in records:
        by_slot[r[SLOT]].append(r)
    held = 0
    for slot in range(streams):
        rows = by_slot.get(slot, [])
        if rows and all(_kept_pace(r, tolerance_ms) for r in rows):
            held += 1

    latency_by_streams = _latency_by_streams(ok, timeline, streams)
    fell_behind = _fell_behind(records, tolerance_ms)
    summary = {
        "streams": streams,
        "streams_held": held,
        "streams_not_held": streams - held,
        "held_tolerance_ms": tolerance_ms,
        "peak_active_streams": max((a for _, a in timeline), default=0),
        "wall_s": round(wall_s, 2),
        "interrupted": interrupted,
        "sessions": {"finished": len(finished), "ok": len(ok), "early": len(early), "at_stop": len(late),
                     "failed": len(failed), "cut_at_end": len(records) - len(finished),
                     # Served at real time: what a server past its capacity still delivers (goodput).
                     "in_time": sum(_kept_pace(r, tolerance_ms) for r in ok)},
        "failures_by_key": dict(Counter(r[KEY] or r[OUTCOME] for r in failed).most_common()),
        "decision_latency_ms": percentiles(r[LATENCY] for r in early),
        "stop_latency_ms": percentiles(r[LATENCY] for r in late),
        "all_decisions_latency_ms": percentiles(r[LATENCY] for r in ok),
        "processing_ms": percentiles(r[PROCESSING] for r in ok),
        "decision_audio_ms": percentiles(r[AUDIO_MS] for r in early),
        "max_send_lag_ms": percentiles(r[LAG] for r in records),
        "generator_cpu_percent": generator_cpu_percent,
        "latency_by_streams": latency_by_streams,
        "fell_behind": fell_behind,
        "timeline": [{"t": t, "active_streams": a} for t, a in timeline],
        "worker_errors": worker_errors,
    }
    summary["server"] = _server_summary(server, ramp_s, summary["peak_active_streams"], 1000.0 / chunk_ms)
    return summary


def _kept_pace(record: tuple, tolerance_ms: float) -> bool:
    if record[OUTCOME] not in (OK, CUT):
        return False
    if record[LAG] is not None and record[LAG] > tolerance_ms:
        return False
    return record[OUTCOME] == CUT or record[LATENCY] is None or record[LATENCY] <= tolerance_ms


def _fell_behind(records: list[tuple], tolerance_ms: float) -> list[dict]:
    """The half-seconds in which sessions that did not keep pace ended, so a stall can be found in time.

    A run that misses its target by a few dozen streams usually lost them all in one moment (a full
    collection, a burst of session churn, the VM pausing); the server's CPU and scheduler timelines
    can then be read at that moment.
    """
    buckets: dict[int, list[tuple]] = defaultdict(list)
    for r in records:
        if not _kept_pace(r, tolerance_ms):
            buckets[int(r[T] // BUCKET_S)].append(r)
    rows = []
    for b in sorted(buckets):
        late = buckets[b]
        worst = max((max(r[LATENCY] or 0.0, r[LAG] or 0.0) for r in late), default=0.0)
        rows.append({"t": round(b * BUCKET_S, 2), "sessions": len(late),
                     "failed": sum(r[OUTCOME] not in (OK, CUT) for r in late), "worst_ms": round(worst, 1)})
    return rows


def _latency_by_streams(ok: list[tuple], timeline: list[tuple[float, int]], streams: int) -> list[dict]:
    """Decision latency percentiles grouped by how many streams were open when the decision came."""
    width = max(1, streams // 20)
    groups: dict[int, list[float]] = defaultdict(list)
    for r in ok:
        if r[LATENCY] is None:
            continue
        groups[_active_at(timeline, r[T]) // width].append(r[LATENCY])
    rows = []
    for g in sorted(groups):
        stats = percentiles(groups[g], (50, 95, 99))
        rows.append({"streams_from": g * width, "streams_to": (g + 1) * width - 1, **stats})
    return rows


def _server_summary(server: ServerStats | None, ramp_s: float, peak_active: int,
                    messages_per_stream_s: float) -> dict | None:
    """Server CPU and memory; CPU per audio message is the figure to size deployments with
    (cores needed ≈ streams × messages per second × µs per message / 1e6)."""
    if server is None:
        return None
    rows = server.timeline()
    loaded = [r for r in rows if r["t"] >= ramp_s] or rows
    out = {"source": server.source, "error": server.error, "timeline": rows}
    if rows:
        idle = server.samples[0].rss_bytes / 2**20
        peak = max(r["rss_mib"] for r in rows)
        cpu_mean = sum(r["cpu_percent"] for r in loaded) / len(loaded)
        offered = peak_active * messages_per_stream_s  # audio messages a second at full load
        out.update(
            cpu_percent_mean_at_full_load=round(cpu_mean, 1),
            cpu_us_per_message=round(cpu_mean / 100.0 * 1e6 / offered, 1) if offered else None,
            cpu_percent_peak=max(r["cpu_percent"] for r in rows),
            rss_mib_before=round(idle, 1),
            rss_mib_peak=peak,
            rss_kib_per_stream=round(1024 * (peak - idle) / peak_active, 1) if peak_active else None,
        )
        busy = [r["scheduler_busy"] for r in loaded if r["scheduler_busy"] is not None]
        out["scheduler_busy_mean_at_full_load"] = round(sum(busy) / len(busy), 3) if busy else None
    return out
