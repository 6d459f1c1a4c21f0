"""Turn a training run's checkpoint into a release: its serving θ, no optimiser state, a note on why.

The serving θ is chosen on the validation split after training (docs/model-report.md, "Choosing θ"),
so it can differ from the θ the run trained with; the note keeps both on record. The optimiser and
scheduler state only matter for `--resume` and would triple the file.

    python scripts/release_checkpoint.py runs/x-rc-e30-s2/best.pt -o models/default/checkpoint.pt \
        --threshold 0.97 --note "θ 0.97 chosen on the validation split (docs/model-report.md)"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from firstspike.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

KEPT = ("epoch", "best_metric", "bad_epochs", "train_config")  # resume keys worth keeping for the record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run's best.pt")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--threshold", type=float, required=True, help="the serving θ, chosen on validation")
    parser.add_argument("--note", required=True, help="why this θ (stored as train_summary.threshold_note)")
    args = parser.parse_args(argv)
    try:
        model, data = load_checkpoint(args.checkpoint)
        model.config = dataclasses.replace(model.config, threshold=args.threshold)
    except (CheckpointError, ValueError) as err:
        print(f"release_checkpoint: {err}", file=sys.stderr)
        return 2
    summary = {**data["train_summary"], "threshold_note": args.note}
    save_checkpoint(args.output, model, data["mode"], summary, **{k: data[k] for k in KEPT if k in data})
    print(f"wrote {args.output}: θ {args.threshold:g} (trained at {data['threshold']:g}), epoch {data.get('epoch')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
