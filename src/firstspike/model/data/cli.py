"""`firstspike data synth` builds a synthetic corpus; `firstspike data info` describes any corpus."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    synth = sub.add_parser("synth", help="build a synthetic keyword corpus with espeak-ng, flite and festival")
    synth.add_argument("--out", required=True, help="output folder (re-running the same command resumes)")
    synth.add_argument("--preset", choices=("tiny", "small", "default"), default="default",
                       help="tiny: seconds, for tests; small: 6.5k examples; default: 35.8k examples (default)")
    synth.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    synth.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="parallel processes (default: number of cores)")
    info = sub.add_parser("info", help="count examples per split, label and engine")
    info.add_argument("corpus", help="a synthetic corpus folder or a Speech Commands v0.02 folder")
    info.add_argument("--task", choices=("sc12", "sc35"), default="sc12", help="label mapping (default sc12)")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _synth(args: argparse.Namespace) -> int:
    from firstspike.model.data.synth import BuildError, build_corpus
    from firstspike.model.data.tts import EngineMissing, TTSError

    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # stop the worker pool cleanly, as Ctrl-C does
    try:
        meta = build_corpus(args.out, args.preset, args.seed, args.workers)
    except (EngineMissing, BuildError, TTSError, FileNotFoundError) as err:
        print(f"firstspike data synth: {err}", file=sys.stderr)
        return 1
    kinds = meta["kinds"]
    print(f"built {meta['examples']} examples ({kinds['clip']} clips, {kinds['stream']} streams, "
          f"{kinds['silence']} silence) in {meta['build_seconds']} s -> {args.out}")
    return 0


def _table(title: str, counts: dict, splits: tuple[str, ...]) -> list[str]:
    keys = sorted({k for c in counts.values() for k in c})
    width = max([len(title)] + [len(str(k)) for k in keys])
    lines = [f"{title:<{width}}  " + "  ".join(f"{s:>7}" for s in splits) + "    total"]
    for key in keys:
        row = [counts[s].get(key, 0) for s in splits]
        lines.append(f"{str(key):<{width}}  " + "  ".join(f"{n:>7}" for n in row) + f"  {sum(row):>7}")
    totals = [sum(counts[s].values()) for s in splits]
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{n:>7}" for n in totals) + f"  {sum(totals):>7}")
    return lines


def _info(args: argparse.Namespace) -> int:
    from firstspike.model.data.corpus import SPLITS, CorpusError, open_corpus

    try:
        corpus = open_corpus(args.corpus, args.task)
    except CorpusError as err:
        print(f"firstspike data info: {err}", file=sys.stderr)
        return 1
    print(corpus.summary())
    print(f"labels ({len(corpus.labels)}): {' '.join(corpus.labels)}")
    for by in ("label", "engine", "kind"):
        print()
        print("\n".join(_table(by, corpus.counts(by), SPLITS)))
    voices = corpus.counts("voice")
    print()
    print("voices per split: " + ", ".join(f"{s} {len([v for v in voices[s] if v])}" for s in SPLITS))
    return 0


def run(args: argparse.Namespace) -> int:
    return _synth(args) if args.data_command == "synth" else _info(args)
