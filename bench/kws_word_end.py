"""When keyword decisions come against the end of the spoken word, RC beside EOS, over θ, as a markdown table.

Usage:
    python bench/kws_word_end.py --rc runs/rc-s*/strict-test.json --eos runs/eos-s*/strict-test.json

Issue 2's target 2 asks that RC's median keyword decision come before the end of the word. Read over
every single-word keyword clip, a clip that never crosses θ is decided at its end, after the word. For
each θ of the reports' sweep this prints, as means over the seeds: keyword accuracy at the first spike,
the median of (decision − word end) over every keyword clip, the share of keyword clips decided before
the word ended, and the false fires on `_unknown_` words that the same θ costs.
"""

from __future__ import annotations

import numpy as np
from rc_eos_table import print_rc_eos_table

NEEDED = "keyword_decision_minus_offset_ms_median"


def _by_theta(report: dict) -> dict[float, dict]:
    sweep = report["theta_sweep"]
    if sweep and NEEDED not in sweep[0]:
        raise SystemExit(f"{report.get('checkpoint')}: this report predates the word-end metrics; evaluate again")
    return {point["theta"]: point for point in sweep}


def _cells(points: list[dict]) -> str:
    mean = lambda fn: np.mean([fn(p) for p in points])  # noqa: E731
    return (f"{100 * mean(lambda p: p['keyword_accuracy']):.1f} % "
            f"| {mean(lambda p: p[NEEDED]):+.0f} ms "
            f"| {100 * mean(lambda p: p['keyword_decided_before_word_end_share']):.1f} % "
            f"| {100 * mean(lambda p: p['false_fire_rate']['_unknown_']):.1f} %")


def _intro(rc: list[dict], eos: list[dict]) -> str:
    return f"{len(rc)} RC and {len(eos)} EOS reports, {rc[0]['keyword_decision_minus_offset_ms']['n']} keyword clips each"


COLUMNS = ["keyword acc.", "median decision − word end", "decided before the word ended", "`_unknown_` false fires"]

if __name__ == "__main__":
    print_rc_eos_table(__doc__.splitlines()[0], _by_theta, _cells, _intro, COLUMNS)
