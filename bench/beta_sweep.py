"""Plot the β (entropy reward) sweep: keyword accuracy against mean decision time, one point per β.

Usage:
    python bench/beta_sweep.py runs/beta-*/test.json --plot docs/img/beta-sweep.png [--markdown OUT.md]

Each input is a `firstspike evaluate` report of an `rc` checkpoint; β is read from its train summary.
The θ sweep of each report is drawn too (thin lines), so both knobs show on one chart.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(paths: list[str]) -> list[dict]:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    return sorted(reports, key=lambda r: r["train_summary"]["beta"])


def table(reports: list[dict]) -> str:
    rows = ["| β | keyword accuracy (first spike) | mean keyword decision (ms) | keyword clips spiked | false fires `_unknown_` |",
            "|---|---|---|---|---|"]
    for r in reports:
        at_theta = next(p for p in r["theta_sweep"] if p["theta"] == r["theta"])
        rows.append(f"| {r['train_summary']['beta']:g} | {r['keyword_accuracy']:.3f} | "
                    f"{at_theta['keyword_decision_ms_mean']:.0f} | {r['keyword_spiked_share']:.3f} | "
                    f"{r['false_fires']['_unknown_']['rate']:.3f} |")
    return "\n".join(rows)


def plot(reports: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    xs, ys = [], []
    for r in reports:
        sweep = [p for p in r["theta_sweep"] if p["keyword_decision_ms_mean"] is not None]
        ax.plot([p["keyword_decision_ms_mean"] for p in sweep], [p["keyword_accuracy"] for p in sweep],
                lw=0.8, alpha=0.5)
        at_theta = next(p for p in sweep if p["theta"] == r["theta"])
        xs.append(at_theta["keyword_decision_ms_mean"])
        ys.append(r["keyword_accuracy"])
        ax.annotate(f"β={r['train_summary']['beta']:g}", (xs[-1], ys[-1]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.plot(xs, ys, "ko-", label=f"β sweep at θ={reports[0]['theta']:g}")
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
