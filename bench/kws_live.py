"""The live view of several seeds' `firstspike evaluate` reports, RC beside EOS, as a markdown table.

Usage:
    python bench/kws_live.py --rc runs/rc-s*/live-test-0.9.json --eos runs/eos-s*/live-test-0.9.json

For each θ of the reports' sweep: the share of single-word keyword clips (each followed by its own
background) that a live stream answers right, answers wrong, or never answers, and the false fires on
`_unknown_` words at the same θ, as means over the seeds (± the standard deviation of "right"). Read the
two modes at equal false fires, not at equal θ: that is the comparison a deployment makes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _by_theta(report: dict) -> dict[float, dict]:
    if "live" not in report:
        raise SystemExit(f"{report.get('checkpoint')}: no live view in this report (evaluate with --live-tail > 0)")
    sweep = {point["theta"]: point for point in report["theta_sweep"]}
    return {point["theta"]: {**point, "false_fire": sweep[point["theta"]]["false_fire_rate"]["_unknown_"]}
            for point in report["live"]["theta_sweep"]}


def _cells(reports: list[dict], theta: float) -> str:
    points = [_by_theta(r)[theta] for r in reports]
    mean = lambda key: 100 * np.mean([p[key] for p in points])  # noqa: E731
    spread = 100 * np.std([p["right"] for p in points])
    return (f"{mean('right'):.1f} ± {spread:.1f} / {mean('wrong'):.1f} / {mean('no_decision'):.1f} % "
            f"| {mean('false_fire'):.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rc", nargs="+", required=True, help="reports of the rc runs")
    parser.add_argument("--eos", nargs="+", required=True, help="reports of the eos runs")
    args = parser.parse_args()
    rc, eos = ([json.loads(Path(p).read_text()) for p in paths] for paths in (args.rc, args.eos))
    thetas = sorted(set.intersection(*(set(_by_theta(r)) for r in rc + eos)))
    print(f"{len(rc)} RC and {len(eos)} EOS reports, {rc[0]['live']['n']} keyword clips each followed by "
          f"{rc[0]['live']['tail_s']:g} s of background")
    print("| θ | RC: right / wrong / no answer | RC `_unknown_` false fires | EOS: right / wrong / no answer "
          "| EOS `_unknown_` false fires |")
    print("|---|---|---|---|---|")
    for theta in thetas:
        print(f"| {theta:g} | {_cells(rc, theta)} | {_cells(eos, theta)} |")


if __name__ == "__main__":
    main()
