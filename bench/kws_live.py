"""The live view of several seeds' `firstspike evaluate` reports, RC beside EOS, as a markdown table.

Usage:
    python bench/kws_live.py --rc runs/rc-s*/live-test-0.9.json --eos runs/eos-s*/live-test-0.9.json

For each θ of the reports' sweep: the share of single-word keyword clips (each followed by its own
background) that a live stream answers right, answers wrong, or never answers, and the false fires on
`_unknown_` words at the same θ, as means over the seeds (± the standard deviation of "right"). Read the
two modes at equal false fires, not at equal θ: that is the comparison a deployment makes.
"""

from __future__ import annotations

import numpy as np
from rc_eos_table import print_rc_eos_table


def _by_theta(report: dict) -> dict[float, dict]:
    if "live" not in report:
        raise SystemExit(f"{report.get('checkpoint')}: no live view in this report (evaluate with --live-tail > 0)")
    sweep = {point["theta"]: point for point in report["theta_sweep"]}
    return {point["theta"]: {**point, "false_fire": sweep[point["theta"]]["false_fire_rate"]["_unknown_"]}
            for point in report["live"]["theta_sweep"]}


def _cells(points: list[dict]) -> str:
    mean = lambda key: 100 * np.mean([p[key] for p in points])  # noqa: E731
    spread = 100 * np.std([p["right"] for p in points])
    return (f"{mean('right'):.1f} ± {spread:.1f} / {mean('wrong'):.1f} / {mean('no_decision'):.1f} % "
            f"| {mean('false_fire'):.1f} %")


def _intro(rc: list[dict], eos: list[dict]) -> str:
    live = rc[0]["live"]
    return f"{len(rc)} RC and {len(eos)} EOS reports, {live['n']} keyword clips each followed by {live['tail_s']:g} s of background"


if __name__ == "__main__":
    print_rc_eos_table(__doc__.splitlines()[0], _by_theta, _cells, _intro,
                       ["right / wrong / no answer", "`_unknown_` false fires"])
