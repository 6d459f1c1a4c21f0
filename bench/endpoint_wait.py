"""How long to wait after the speech before answering: the live view at several end-of-speech waits.

Usage:
    python bench/endpoint_wait.py models/default/checkpoint.pt --corpus corpora/default --split val

Each single-word keyword and `_unknown_` clip of the split is streamed with 1 s of its own background after
it (`firstspike.model.live`), and the stream ends `wait` ms after the word's measured end (the server's
`endpoint_ms`). For each wait and score floor it prints the share of keywords answered right, answered
wrong and given no command, and the share of `_unknown_` words given a command, as a markdown table.
Choose the wait on the validation split; report it on the test split.
"""

from __future__ import annotations

import argparse

from live_tails import split_tails

from firstspike.model.live import endpointed_rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--theta", type=float, help="θ for the spikes (default: the checkpoint's)")
    parser.add_argument("--waits", type=float, nargs="+", default=[150, 200, 300, 400, 500, 700])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.7, 0.8, 0.9])
    args = parser.parse_args()

    model, ckpt, (data, probs, keyword, firing_mask) = split_tails(args.checkpoint, args.corpus, args.split)
    theta = ckpt["threshold"] if args.theta is None else args.theta
    print(f"{args.checkpoint}, {args.split} split, θ = {theta}: % of keywords right / wrong / no command "
          "(% of `_unknown_` words given a command)\n")
    print("| wait after the word | " + " | ".join(f"floor {f:g}" for f in args.floors) + " |")
    print("|---|" + "---|" * len(args.floors))
    for wait in args.waits:
        cells = []
        for floor in args.floors:
            r = endpointed_rates(data, probs, keyword, firing_mask, theta, model.config.hop_ms, wait, floor)
            cells.append(f"{100 * r['right']:.1f} / {100 * r['wrong']:.1f} / {100 * r['no_command']:.1f} "
                         f"({100 * r['unknown_commands']:.1f})")
        print(f"| {wait:g} ms | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
