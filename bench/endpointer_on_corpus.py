"""The server's end-of-speech detector on the corpus's single-word clips, as the live view streams them.

Usage:
    python bench/endpointer_on_corpus.py --corpus corpora/default --split val [--margins 6 8 10]
    python bench/endpointer_on_corpus.py --corpus corpora/default --split test --checkpoint models/default/checkpoint.pt

Each single-word keyword and `_unknown_` clip is followed by 1 s of its own background (as in
`firstspike.model.live`) and pushed into `firstspike.endpointing.Endpointer` in 100 ms messages, as a
client sends them. For each margin it prints the share of clips where the detector fired, fired before
the word's measured end (it cut the word), or never fired (the stream waits for the client), and how
long after the word's end it fired (median and p90, ms), against the wait it was asked for.

With `--checkpoint`, it also gives what a user gets from that model when the stream ends where this
detector ends it (10 dB), rather than a fixed wait after the word as in `bench/endpoint_wait.py`: a spike
before that point is the answer, else the arg-max of the last frame there (a command from `--floor` up);
where the detector never fires, only a spike answers.
"""

from __future__ import annotations

import argparse

import numpy as np

from firstspike.endpointing import Endpointer
from firstspike.model.checkpoint import load_checkpoint
from firstspike.model.inference import decide
from firstspike.model.live import live_tail_probabilities
from firstspike.model.data.audio import load_wav
from firstspike.model.data.corpus import open_corpus
from firstspike.model.evaluate import LIVE_TAIL_S
from firstspike.model.labels import SILENCE
from firstspike.model.live import with_background_tail

RATE = 16000
CHUNK = RATE // 10


def fired_at_ms(audio: np.ndarray, quiet_ms: float, margin_db: float) -> float | None:
    detector = Endpointer(RATE, quiet_ms, margin_db=margin_db)
    for start in range(0, len(audio), CHUNK):
        if detector.push(audio[start: start + CHUNK]):
            return 1000.0 * min(start + CHUNK, len(audio)) / RATE
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--wait", type=float, default=300.0, help="the endpoint_ms asked for (default 300)")
    parser.add_argument("--margins", type=float, nargs="+", default=[10.0], help="dB above the floor that count as speech")
    parser.add_argument("--limit", type=int, help="at most this many clips (a seeded sample)")
    parser.add_argument("--checkpoint", help="also score a model's answers at the detector's end of speech")
    parser.add_argument("--floor", type=float, default=0.8, help="with --checkpoint: score from which a late answer counts")
    args = parser.parse_args()
    if args.checkpoint and args.limit:
        parser.error("--checkpoint scores every clip of the split; drop --limit")

    corpus = open_corpus(args.corpus, task="sc12")
    rows = [r for r in corpus.rows(args.split) if r.kind == "clip" and r.label != SILENCE and r.offset_ms is not None]
    if args.limit and len(rows) > args.limit:
        rows = [rows[i] for i in sorted(np.random.default_rng(0).choice(len(rows), args.limit, replace=False))]
    clips = [with_background_tail(np.asarray(load_wav(r.path), np.float32), r.onset_ms, RATE, LIVE_TAIL_S, seed=i)
             for i, r in enumerate(rows)]
    offsets = np.array([r.offset_ms for r in rows], dtype=float)
    print(f"{len(rows)} single-word clips of the {args.split} split, each + {LIVE_TAIL_S:g} s of its background; "
          f"endpoint_ms {args.wait:g}, 100 ms messages\n")
    print("| margin | fired | fired before the word ended | never fired | fired − word end: median / p90 |")
    print("|---|---|---|---|---|")
    fired_by_margin = {}
    for margin in args.margins:
        fired = np.array([np.nan if (t := fired_at_ms(a, args.wait, margin)) is None else t for a in clips])
        fired_by_margin[margin] = fired
        ok = ~np.isnan(fired)
        after = fired[ok] - offsets[ok]
        early = np.mean(ok & (fired < offsets))
        print(f"| {margin:g} dB | {100 * ok.mean():.1f} % | {100 * early:.1f} % | {100 * (1 - ok.mean()):.1f} % | "
              f"{np.median(after):.0f} / {np.percentile(after, 90):.0f} ms |")
    if args.checkpoint:
        fired = fired_by_margin.get(10.0)
        if fired is None:
            fired = np.array([np.nan if (t := fired_at_ms(a, args.wait, 10.0)) is None else t for a in clips])
        _score_model(args, corpus, rows, fired)


def _score_model(args, corpus, rows, fired: np.ndarray) -> None:
    """Right / wrong / no command for keywords, and commands on `_unknown_` words, at the detector's end."""
    model, ckpt = load_checkpoint(args.checkpoint, map_location="cpu")
    data, probs, keyword, firing = live_tail_probabilities(model, rows, model.config.labels,
                                                           model.config.firing_labels, LIVE_TAIL_S, load_wav,
                                                           show_progress=False)
    theta = ckpt["threshold"]
    frame_ms = model.config.hop_ms
    # the server decides after the last frame it took: the message that ended the speech, padded to a frame
    ends = [len(p) - 1 if np.isnan(t) else min(len(p), int(np.ceil(t / frame_ms))) - 1 for p, t in zip(probs, fired)]
    spikes = decide([p[: end + 1] for p, end in zip(probs, ends)], firing, theta)
    late = np.array([int(np.argmax(p[end])) for p, end in zip(probs, ends)])
    score = np.array([p[end][label] for p, end, label in zip(probs, ends, late)])
    command = spikes.spiked | (~np.isnan(fired) & firing[late] & (score >= args.floor))
    answer = np.where(spikes.spiked, spikes.predicted, late)
    right = command & (answer == data.targets)
    print(f"\n{args.checkpoint}, θ = {theta}, floor {args.floor:g}, the stream ended where the 10 dB detector "
          f"ended it: {100 * right[keyword].mean():.1f} % of keywords right, "
          f"{100 * (command & ~right)[keyword].mean():.1f} % wrong, {100 * (~command)[keyword].mean():.1f} % "
          f"no command; {100 * command[~keyword].mean():.1f} % of `_unknown_` words given a command")


if __name__ == "__main__":
    main()
