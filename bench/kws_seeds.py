"""Aggregate `firstspike evaluate` reports of several seeds into the keyword-spotting target table.

Usage:
    python bench/kws_seeds.py --rc runs/rc-s*/test.json --eos runs/eos-s*/test.json \
        [--metrics runs/rc-s*/metrics.jsonl runs/eos-s*/metrics.jsonl] [--markdown OUT.md]

Every figure is a mean over the given seeds (± the standard deviation), read from the JSON the
evaluation wrote; nothing is computed here that the reports do not hold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _load(paths: list[str]) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def _ms(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def _row(name: str, fn, rc: list[dict], eos: list[dict], scale: float = 1.0) -> str:
    def cell(reports):
        vals = []
        for r in reports:
            try:
                v = fn(r)
            except (KeyError, TypeError):
                v = None
            vals.append(None if v is None else v * scale)
        return _ms(vals)

    return f"| {name} | {cell(rc)} | {cell(eos)} |"


def target_table(rc: list[dict], eos: list[dict]) -> str:
    ff = lambda label: (lambda r: r["false_fires"][label]["rate"])  # noqa: E731
    rows = [
        "| metric (test split, held-out voices) | RC | EOS |",
        "|---|---|---|",
        _row("keyword accuracy at first spike (θ)", lambda r: r["keyword_accuracy"], rc, eos),
        _row("keyword accuracy at end of clip", lambda r: r["keyword_accuracy_end"], rc, eos),
        _row("all-clip accuracy at first spike", lambda r: r["accuracy_first_spike"], rc, eos),
        _row("keyword clips that spiked", lambda r: r["keyword_spiked_share"], rc, eos),
        _row("median keyword decision (ms of audio, all keyword clips)", lambda r: r["keyword_decision_ms"]["median"], rc, eos),
        _row("mean keyword decision (ms of audio, all keyword clips)", lambda r: r["keyword_decision_ms"]["mean"], rc, eos),
        _row("median decision − word onset (ms, spiked)", lambda r: r["decision_minus_onset_ms"]["median"], rc, eos),
        _row("median decision − word end (ms, spiked)", lambda r: r["decision_minus_offset_ms"]["median"], rc, eos),
        _row("p90 decision − word end (ms, spiked)", lambda r: r["decision_minus_offset_ms"]["p90"], rc, eos),
        _row("spiked decisions before the word ended", lambda r: r["decided_before_word_end_share"], rc, eos),
        _row("median decision − word end (ms, all keyword clips)", lambda r: r["keyword_decision_minus_offset_ms"]["median"], rc, eos),
        _row("keyword clips decided before the word ended", lambda r: r["keyword_decided_before_word_end_share"], rc, eos),
        _row("false fires on `_unknown_`", ff("_unknown_"), rc, eos),
        _row("false fires on `_silence_`", ff("_silence_"), rc, eos),
        _row("long streams: keyword accuracy", lambda r: r["stream"]["accuracy"], rc, eos),
        _row("long streams: false fire before the keyword", lambda r: r["stream"]["false_fire_before_onset"], rc, eos),
    ]
    engines = sorted({e for r in rc + eos for e, v in r.get("keyword_accuracy_by_engine", {}).items() if v["n"]})
    for e in engines:
        rows.append(_row(f"keyword accuracy at first spike, {e}",
                         lambda r, e=e: r["keyword_accuracy_by_engine"][e]["accuracy"], rc, eos))
    return "\n".join(rows)


def epoch_table(metric_files: list[str]) -> str:
    """Per-run mean epoch wall time and frames computed, from metrics.jsonl."""
    rows = ["| run | epochs | mean epoch train wall (s) | frames computed / available | mean (t*+1)/T |", "|---|---|---|---|---|"]
    for path in metric_files:
        lines = [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]
        if not lines:
            continue
        rows.append(
            f"| {Path(path).parent.name} | {len(lines)} | {np.mean([m['epoch_train_s'] for m in lines]):.1f} | "
            f"{np.mean([m['train_frames_fraction'] for m in lines]):.3f} | {np.mean([m['train_mean_rel_t'] for m in lines]):.3f} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rc", nargs="+", required=True)
    parser.add_argument("--eos", nargs="+", required=True)
    parser.add_argument("--metrics", nargs="*", default=[])
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    text = target_table(_load(args.rc), _load(args.eos))
    if args.metrics:
        text += "\n\n" + epoch_table(args.metrics)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
