"""The least share of frames any rank-coded run can compute on a corpus, from its manifest alone.

Issue 2's target 4 asks an RC epoch for at most 0.7× the wall time of an EOS epoch. RC saves only the
frames after each sequence's first spike, and filler examples (`_silence_`, `_unknown_`) never fire,
so they run to their end in both modes. This prints the share of the training frames that RC would
still compute if every keyword example spiked at its word's onset (no model can do better: before the
onset it has heard nothing of the word) and at its word's end (the aim of target 2), per kind of example.

    .venv/bin/python bench/rc_frame_bound.py corpora/default
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from firstspike.model.data.corpus import CorpusError, open_corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--task", default="sc12")
    parser.add_argument("--split", default="train")
    parser.add_argument("--hop-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    try:
        corpus = open_corpus(args.corpus, task=args.task)
    except CorpusError as err:
        print(f"rc_frame_bound: {err}", file=sys.stderr)
        return 2
    firing = set(corpus.firing_labels)
    frames = defaultdict(lambda: [0, 0, 0])  # kind -> [all frames, up to onset, up to word end]
    for row in corpus.rows(args.split):
        total = int(row.duration_ms // args.hop_ms)
        kind = ("keyword " if row.label in firing else "filler ") + row.kind
        if row.label in firing:
            at_onset = min(total, int(row.onset_ms // args.hop_ms) + 1)
            at_end = min(total, int(row.offset_ms // args.hop_ms) + 1)
        else:
            at_onset = at_end = total
        for index, value in enumerate((total, at_onset, at_end)):
            frames[kind][index] += value
    everything = [sum(counts[i] for counts in frames.values()) for i in range(3)]
    if everything[0] == 0:
        print(f"rc_frame_bound: no {args.split} examples in {args.corpus}", file=sys.stderr)
        return 2
    print(f"{args.corpus} ({args.task}, {args.split} split): {everything[0]:,} frames of {args.hop_ms:g} ms")
    print("| examples | share of the frames | computed if every keyword spikes at its word's onset | … at its end |")
    print("|---|---:|---:|---:|")
    for kind in sorted(frames):
        total, at_onset, at_end = frames[kind]
        print(f"| {kind} | {total / everything[0]:.3f} | {at_onset / total:.3f} | {at_end / total:.3f} |")
    print(f"| **all** | 1.000 | **{everything[1] / everything[0]:.3f}** | **{everything[2] / everything[0]:.3f}** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
