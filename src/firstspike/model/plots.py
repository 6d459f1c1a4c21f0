"""Accuracy versus decision time, one curve per checkpoint (the θ sweep of `firstspike evaluate`)."""

from __future__ import annotations

from pathlib import Path


def plot_tradeoff(reports: dict[str, dict], path: str | Path) -> Path:
    """Write a PNG: first-spike keyword accuracy against mean decision time (ms of audio) over θ.

    The decision time counts every single-word keyword clip; one that never spikes is decided at its end, so the
    curve is defined even for a model that rarely crosses θ.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for name, report in reports.items():
        points = [(p["keyword_decision_ms_mean"], p.get("keyword_accuracy") or p["accuracy"], p["theta"])
                  for p in report["theta_sweep"] if p["keyword_decision_ms_mean"] is not None]
        if not points:
            continue
        xs, ys, ts = zip(*points)
        ax.plot(xs, ys, marker="o", label=f"{name} ({report['mode']})")
        for x, y, t in points[:: max(1, len(points) // 4)]:
            ax.annotate(f"θ={t:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("mean decision time on single-word keyword clips (ms of audio)")
    ax.set_ylabel("keyword accuracy at first spike")
    ax.set_title("Rank coding: accuracy vs decision time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
