"""Plot the β (entropy reward) sweep: keyword accuracy against mean decision time, one point per β.

Usage:
    python bench/beta_sweep.py runs/beta-*/test.json --plot docs/img/beta-sweep.png [--markdown OUT.md]

Each input is a `firstspike evaluate` report of an `rc` checkpoint; β and where its entropy was read
(`--entropy spike|mean`; runs from before that option read it at the spike) come from its train
summary. Each reading gets its own line; the θ sweep of each report is drawn too (thin lines), so both
knobs show on one chart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


READINGS = ("spike", "mean")


def entropy_reading(report: dict) -> str:
    """'spike', 'mean', or '-' for β = 0, where there is no entropy term and the run lies on both lines."""
    if report["train_summary"]["beta"] == 0:
        return "-"
    return report["train_summary"].get("entropy", "spike")


def load(paths: list[str]) -> list[dict]:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    # β = 0 sits on the first reading's line, in β order (a negative β reads its entropy at t* too)
    order = {"-": 0, **{reading: i for i, reading in enumerate(READINGS)}}
    return sorted(reports, key=lambda r: (order[entropy_reading(r)], r["train_summary"]["beta"]))


def table(reports: list[dict]) -> str:
    rows = ["| entropy read | β | keyword accuracy (first spike) | mean keyword decision (ms) | keyword clips spiked "
            "| median decision − word end (ms, spiked) | false fires `_unknown_` "
            "| long streams: accuracy / false fire before the keyword |",
            "|---|---|---|---|---|---|---|---|"]
    for r in reports:
        at_theta = next(p for p in r["theta_sweep"] if p["theta"] == r["theta"])
        rows.append(f"| {entropy_reading(r)} | {r['train_summary']['beta']:g} | {r['keyword_accuracy']:.3f} | "
                    f"{at_theta['keyword_decision_ms_mean']:.0f} | {r['keyword_spiked_share']:.3f} | "
                    f"{r['decision_minus_offset_ms']['median']:+.0f} | {r['false_fires']['_unknown_']['rate']:.3f} | "
                    f"{r['stream']['accuracy']:.3f} / {r['stream']['false_fire_before_onset']:.3f} |")
    return "\n".join(rows)


def plot(reports: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for reading, style in zip(READINGS, ("ko-", "bs--")):
        group = [r for r in reports if entropy_reading(r) in ("-", reading)]
        if not group:
            continue
        xs, ys = [], []
        for r in group:
            sweep = [p for p in r["theta_sweep"] if p["keyword_decision_ms_mean"] is not None]
            ax.plot([p["keyword_decision_ms_mean"] for p in sweep], [p["keyword_accuracy"] for p in sweep],
                    style[0], lw=0.6, alpha=0.3)
            at_theta = next(p for p in sweep if p["theta"] == r["theta"])
            xs.append(at_theta["keyword_decision_ms_mean"])
            ys.append(r["keyword_accuracy"])
            ax.annotate(f"β={r['train_summary']['beta']:g}", (xs[-1], ys[-1]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=style[0])
        where = "at t*" if reading == "spike" else "averaged over steps ≤ t*"
        ax.plot(xs, ys, style, label=f"β sweep, entropy {where} (θ={group[0]['theta']:g})")
    ax.set_xlabel("mean decision time on single-word keyword clips (ms of audio)")
    ax.set_ylabel("keyword accuracy at first spike")
    ax.set_title("Entropy reward β: speed/accuracy trade-off (thin: θ sweeps)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--plot", required=True)
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    reports = load(args.reports)
    plot(reports, args.plot)
    text = table(reports)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
