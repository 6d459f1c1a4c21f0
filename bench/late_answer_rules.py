"""Which answer to give at the end of speech: the last frame's arg-max, or something smoothed.

Usage:
    python bench/late_answer_rules.py models/default/checkpoint.pt --corpus corpora/default --split val

The live view's streams (`firstspike.model.live`: each single-word keyword and `_unknown_` clip with 1 s of
its own background) end `--wait` ms after the word. A spike before that is the answer; otherwise one of
these rules picks the late answer, which counts as a command when it is a firing label scoring at least
the floor:
- the server's rule: the arg-max of the last frame, scored there;
- the arg-max of the probabilities averaged over the last 300 or 500 ms;
- the firing label with the highest peak since the word's onset, scored at its peak.
Prints % of keywords right / wrong and % of `_unknown_` words given a command, per rule and floor.
"""

from __future__ import annotations

import argparse

import numpy as np

from live_tails import split_tails

from firstspike.model.inference import decide


def _argmax_rule(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([int(np.argmax(r)) for r in rows])
    return labels, np.array([r[label] for r, label in zip(rows, labels)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--wait", type=float, default=300.0, help="ms after the word's end (default 300)")
    parser.add_argument("--floors", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    args = parser.parse_args()

    model, ckpt, (data, probs, keyword, firing) = split_tails(args.checkpoint, args.corpus, args.split)
    frame_ms = model.config.hop_ms
    offsets = np.array([r.offset_ms for r in data.rows], dtype=float)
    onsets = np.array([r.onset_ms for r in data.rows], dtype=float)
    ends = np.minimum(np.ceil((offsets + args.wait) / frame_ms).astype(int), [len(p) for p in probs]) - 1
    spikes = decide([p[: end + 1] for p, end in zip(probs, ends)], firing, ckpt["threshold"])

    def window_mean(ms: float) -> list[np.ndarray]:
        n = int(ms / frame_ms)
        return [p[max(0, end - n + 1): end + 1].mean(axis=0) for p, end in zip(probs, ends)]

    peaks = [p[min(int(onset // frame_ms), end): end + 1].max(axis=0) * firing for p, onset, end in zip(probs, onsets, ends)]
    rules = {
        "last frame (the server's)": _argmax_rule([p[end] for p, end in zip(probs, ends)]),
        "mean of the last 300 ms": _argmax_rule(window_mean(300)),
        "mean of the last 500 ms": _argmax_rule(window_mean(500)),
        "firing peak since onset": _argmax_rule(peaks),
    }
    print(f"{args.checkpoint}, {args.split} split, θ = {ckpt['threshold']}, end {args.wait:g} ms after the word: "
          "% of keywords right / wrong (% of `_unknown_` words given a command)\n")
    print("| rule | " + " | ".join(f"floor {f:g}" for f in args.floors) + " |")
    print("|---|" + "---|" * len(args.floors))
    for name, (label, score) in rules.items():
        cells = []
        for floor in args.floors:
            command = spikes.spiked | (firing[label] & (score >= floor))
            answer = np.where(spikes.spiked, spikes.predicted, label)
            right = command & (answer == data.targets)
            cells.append(f"{100 * right[keyword].mean():.1f} / {100 * (command & ~right)[keyword].mean():.1f} "
                         f"({100 * command[~keyword].mean():.1f})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
