"""Compare runs at equal false fires: keyword accuracy and mean keyword decision where `_unknown_` fires cross a rate.

Usage:
    python bench/at_false_fires.py --rate 0.03 --group "with SpecAugment" runs/rc-s{0,1,2}/test-0.9.json \
        --group "no SpecAugment" runs/nosa-rc-s{0,1,2}/test-0.9.json

Two models trained differently are seldom equally cautious at one θ: one may decide earlier only
because it fires more. Reading each report's θ sweep where its false fires on unknown words equal
`--rate` compares them at the same cost. The sweep's points are joined linearly, θ by θ. A report whose
sweep never crosses the rate has no reading. Each group prints its per-run readings and their mean ±
standard deviation.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def at_rate(sweep: list[dict], rate: float) -> dict | None:
    """θ, keyword accuracy and mean keyword decision where the `_unknown_` false-fire rate equals `rate`."""
    points = sorted(sweep, key=lambda p: p["theta"])
    for low, high in zip(points, points[1:]):
        before, after = low["false_fire_rate"]["_unknown_"], high["false_fire_rate"]["_unknown_"]
        if before >= rate >= after and before != after:
            w = (before - rate) / (before - after)
            return {key: low[key] + w * (high[key] - low[key])
                    for key in ("theta", "keyword_accuracy", "keyword_decision_ms_mean")}
    return None


def _mean(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.03, help="false-fire rate on _unknown_ (default 0.03)")
    parser.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "REPORT"),
                        help="a name, then the `firstspike evaluate` JSON reports of its runs; repeat per group")
    args = parser.parse_args()
    for name, *paths in args.group:
        if not paths:
            parser.error(f"group {name!r} has no reports")
        readings = []
        print(f"{name}: where `_unknown_` false fires = {100 * args.rate:g} %")
        for path in paths:
            reading = at_rate(json.loads(Path(path).read_text())["theta_sweep"], args.rate)
            if reading is None:
                print(f"  {path}: its θ sweep never crosses {args.rate}")
                continue
            readings.append(reading)
            print(f"  {path}: θ {reading['theta']:.3f}, keyword accuracy {100 * reading['keyword_accuracy']:.1f} %, "
                  f"mean keyword decision {reading['keyword_decision_ms_mean']:.0f} ms")
        if readings:
            print(f"  mean: keyword accuracy {_mean([100 * r['keyword_accuracy'] for r in readings])} %, "
                  f"mean keyword decision {_mean([r['keyword_decision_ms_mean'] for r in readings])} ms")


if __name__ == "__main__":
    main()
