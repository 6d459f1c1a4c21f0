"""Turn session results into plain dicts (for --json) and rich tables (for people).

The dicts are the single source: tables are drawn from them, so the JSON and the screen never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from firstspike.client.audio_files import Clip, is_filler, truth_label
from firstspike.client.connection import OK, SessionResult


def percentiles(values: Iterable[float | None], points: Sequence[int] = (50, 90, 95, 99)) -> dict:
    """n, mean, the given percentiles and max of the non-missing values (None when there are none)."""
    data = np.array([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return {"n": 0}
    out = {"n": int(data.size), "mean": round(float(data.mean()), 3)}
    for p in points:
        out[f"p{p}"] = round(float(np.percentile(data, p)), 3)
    out["max"] = round(float(data.max()), 3)
    return out


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def session_report(res: SessionResult, clip: Clip | None, chunk_ms: float, paced: bool) -> dict:
    """Everything `firstspike stream FILE` prints, as one JSON-able dict."""
    decision = res.decision or {}
    duration = clip.duration_ms if clip is not None else res.audio_ms_sent
    audio_ms = decision.get("audio_ms")
    report = {
        "file": str(clip.path) if clip is not None else None,
        "label": clip.label if clip is not None else None,
        "outcome": res.outcome,
        "error": res.failure or None,
        "error_key": res.failure_key or None,
        "close_code": res.close_code,
        "sample_rate": res.sample_rate,
        "channels": res.channels,
        "duration_ms": _round(duration, 1),
        "chunk_ms": chunk_ms,
        "paced": paced,
        "model": (res.ready or {}).get("model"),
        "threshold": (res.ready or {}).get("threshold"),
        "decision": res.decision,
        "audio_ms_to_decision": audio_ms,
        "share_of_file": _round(audio_ms / duration, 4) if audio_ms is not None and duration else None,
        "wall_ms_from_first_byte": _round(res.wall_ms_to_decision),
        "decision_latency_ms": _round(res.decision_latency_ms),
        "decision_chunk": res.decision_chunk,
        "latency_from": "deciding chunk" if res.decision_chunk is not None else ("stop message" if res.decision else None),
        "processing_ms": decision.get("processing_ms"),
        "ping_rtt_ms": _round(res.ping_rtt_ms),
        "connect_ms": _round(res.connect_ms),
        "chunks_sent": len(res.chunks),
        "audio_ms_sent": _round(res.audio_ms_sent, 1),
        "max_send_lag_ms": _round(res.max_lag_ms),
        "scores_received": res.scores_received,
    }
    return report


@dataclass
class Scored:
    """One file of a batch run, with the class the model should have given it."""

    report: dict
    truth: str | None

    @property
    def predicted(self) -> str | None:
        return (self.report.get("decision") or {}).get("label")

    @property
    def early(self) -> bool:
        return bool((self.report.get("decision") or {}).get("early"))


def score(report: dict, model_labels: Sequence[str]) -> Scored:
    return Scored(report, truth_label(report.get("label"), model_labels))


def batch_summary(scored: list[Scored], total: int, interrupted: bool = False) -> dict:
    """Accuracy, false fires on filler clips, decision-time and latency percentiles."""
    done = [s for s in scored if s.report["outcome"] == OK]
    failures = Counter(s.report.get("error_key") or s.report["outcome"] for s in scored if s.report["outcome"] != OK)
    labelled = [s for s in done if s.truth is not None]
    keywords = [s for s in labelled if not is_filler(s.truth)]
    fillers = [s for s in labelled if is_filler(s.truth)]
    correct = sum(s.predicted == s.truth for s in labelled)
    keyword_correct = sum(s.predicted == s.truth for s in keywords)
    false_fires = sum(s.early for s in fillers)
    per_label: dict[str, dict] = {}
    for s in labelled:
        row = per_label.setdefault(s.truth, {"n": 0, "correct": 0, "early": 0})
        row["n"] += 1
        row["correct"] += int(s.predicted == s.truth)
        row["early"] += int(s.early)
    return {
        "files": total,
        "streamed": len(scored),
        "completed": len(done),
        "failed": dict(failures),
        "interrupted": interrupted,
        "labelled": len(labelled),
        "accuracy": _ratio(correct, len(labelled)),
        "keyword_clips": len(keywords),
        "keyword_accuracy": _ratio(keyword_correct, len(keywords)),
        "filler_clips": len(fillers),
        "false_fires": false_fires,
        "false_fire_rate": _ratio(false_fires, len(fillers)),
        "early_decisions": sum(s.early for s in done),
        "decision_audio_ms": percentiles(s.report["audio_ms_to_decision"] for s in done if s.early),
        "share_of_file": percentiles(s.report["share_of_file"] for s in done if s.early),
        "decision_latency_ms": percentiles(s.report["decision_latency_ms"] for s in done if s.early),
        "stop_latency_ms": percentiles(s.report["decision_latency_ms"] for s in done if not s.early),
        "processing_ms": percentiles(s.report["processing_ms"] for s in done),
        "ping_rtt_ms": percentiles(s.report["ping_rtt_ms"] for s in done),
        "per_label": dict(sorted(per_label.items())),
    }


def _ratio(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


# -- drawing -------------------------------------------------------------------------------------
def _fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def print_session(console, report: dict) -> None:
    from rich.table import Table

    decision = report.get("decision")
    title = report["file"] or "stream"
    if decision:
        kind = "early" if decision.get("early") else "at stop"
        console.print(
            f"[bold]{title}[/bold]: [bold green]{decision.get('label')}[/bold green] "
            f"(score {decision.get('score', 0):.3f}, {kind}, frame {decision.get('frame')})"
        )
    else:
        console.print(f"[bold]{title}[/bold]: [bold red]no decision[/bold red] — {report.get('error')}")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    share = report.get("share_of_file")
    rows = [
        ("model", _fmt(report.get("model"))),
        ("audio to decision", f"{_fmt(report.get('audio_ms_to_decision'), ' ms')}"
         + (f"  ({100 * share:.0f}% of {report['duration_ms']:.0f} ms)" if share is not None else "")),
        ("wall from first byte", _fmt(report.get("wall_ms_from_first_byte"), " ms")),
        (f"decision latency (from {report.get('latency_from') or '–'})", _fmt(report.get("decision_latency_ms"), " ms", 2)),
        ("server processing", _fmt(report.get("processing_ms"), " ms", 2)),
        ("ping round trip", _fmt(report.get("ping_rtt_ms"), " ms", 2)),
        ("connect + ready", _fmt(report.get("connect_ms"), " ms")),
        ("sent", f"{report['chunks_sent']} chunks of {report['chunk_ms']:g} ms"
         f" ({'real time' if report['paced'] else 'fast'}), {report['audio_ms_sent']:.0f} ms audio"),
        ("close code", _fmt(report.get("close_code"))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def pct_row(name: str, stats: dict, unit: str = " ms") -> tuple:
    if not stats.get("n"):
        return (name, "0", "–", "–", "–", "–", "–")
    return (
        name, str(stats["n"]),
        *(_fmt(stats[k], unit if unit != "%" else "", 1) for k in ("p50", "p90", "p95", "p99", "max")),
    )


def print_summary(console, summary: dict) -> None:
    from rich.table import Table

    head = Table(title="stream summary" + (" (interrupted: partial)" if summary["interrupted"] else ""), show_header=False)
    head.add_column(style="dim")
    head.add_column(justify="right")
    acc = summary["accuracy"]
    kacc = summary["keyword_accuracy"]
    ffr = summary["false_fire_rate"]
    head.add_row("files streamed", f"{summary['streamed']} / {summary['files']}")
    head.add_row("completed", str(summary["completed"]))
    head.add_row("failed", ", ".join(f"{k}: {v}" for k, v in summary["failed"].items()) or "0")
    head.add_row("accuracy", f"{100 * acc:.1f}% of {summary['labelled']}" if acc is not None else "– (no labels)")
    head.add_row("keyword accuracy", f"{100 * kacc:.1f}% of {summary['keyword_clips']}" if kacc is not None else "–")
    head.add_row(
        "false fires on filler",
        f"{summary['false_fires']} of {summary['filler_clips']} ({100 * ffr:.1f}%)" if ffr is not None else "– (no filler clips)",
    )
    head.add_row("early decisions", str(summary["early_decisions"]))
    console.print(head)
    table = Table(title="timings of early decisions (stop decisions: latency from the stop message)")
    for col in ("", "n", "p50", "p90", "p95", "p99", "max"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row(*pct_row("audio to decision", summary["decision_audio_ms"]))
    share = {k: (100 * v if k not in ("n",) else v) for k, v in summary["share_of_file"].items()}
    table.add_row(*pct_row("share of file (%)", share, "%"))
    table.add_row(*pct_row("decision latency", summary["decision_latency_ms"]))
    table.add_row(*pct_row("stop latency", summary["stop_latency_ms"]))
    table.add_row(*pct_row("server processing", summary["processing_ms"]))
    table.add_row(*pct_row("ping round trip", summary["ping_rtt_ms"]))
    console.print(table)
