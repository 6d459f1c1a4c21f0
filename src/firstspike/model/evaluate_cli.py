"""`firstspike evaluate`: accuracy at first spike and at the end, decision times, false fires, θ sweep."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint written by `firstspike train` (best.pt)")
    parser.add_argument("--corpus", required=True, help="corpus folder (synthetic or Speech Commands)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--task", default=None, choices=["sc12", "sc35"], help="default: the checkpoint's task")
    parser.add_argument("--theta", type=float, default=None, help="threshold for the headline numbers (default: the checkpoint's)")
    parser.add_argument("--out", required=True, help="JSON report")
    parser.add_argument("--plot", default=None, help="PNG of accuracy vs decision time over θ")
    parser.add_argument("--compare", default=None, help="another checkpoint (e.g. the eos run) to evaluate and plot alongside")
    parser.add_argument("--live-tail", type=float, default=1.0, metavar="SECONDS",
                        help="follow each keyword clip with this much of its background and report how many a live "
                             "stream would detect at all (default: %(default)s; 0 skips it)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quiet", action="store_true")


def _headline(name: str, r: dict) -> str:
    dm = r["decision_ms"]["median"]
    kw = r.get("keyword_accuracy")
    before = r.get("keyword_decided_before_word_end_share")
    return (f"{name} [{r['mode']}] θ={r['theta']:g}: keyword accuracy first spike "
            f"{'-' if kw is None else f'{kw:.3f}'}, all clips first spike {r['accuracy_first_spike']:.3f}, "
            f"at end {r['accuracy_end']:.3f}, spiked {r['spiked_share']:.2f}, "
            f"median spiked decision {'-' if dm is None else f'{dm:.0f} ms'}, "
            f"keyword clips decided before the word ended {'-' if before is None else f'{before:.2f}'}")


def _channel_line(channels: dict) -> str:
    def part(name: str, acc: dict) -> str:
        value = "-" if acc["accuracy"] is None else f"{acc['accuracy']:.3f}"
        return f"{name} {value} (n={acc['n']})"

    bands = ", ".join(part(name, acc) for name, acc in channels["snr"].items())
    engines = ", ".join(part(name, acc) for name, acc in channels["clean_by_engine"].items())
    return f"  keyword accuracy by speech-to-noise ratio: {bands}\n  clean, no room or line, per engine: {engines}"


def _live_line(live: dict) -> str:
    return (f"  live (each keyword clip + {live['tail_s']:g} s of its background, θ={live['theta']:g}): "
            f"right {live['right']:.3f}, wrong {live['wrong']:.3f}, no decision {live['no_decision']:.3f}")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from firstspike.model.checkpoint import CheckpointError
    from firstspike.model.evaluate import evaluate_checkpoint
    from firstspike.model.plots import plot_tradeoff

    if args.theta is not None and not 0 < args.theta <= 1:
        print("firstspike evaluate: --theta must lie in (0, 1]", file=sys.stderr)
        return 2
    if not 0 <= args.live_tail <= 60:
        print("firstspike evaluate: --live-tail must lie in [0, 60] seconds", file=sys.stderr)
        return 2
    common = dict(corpus_dir=args.corpus, split=args.split, task=args.task, theta=args.theta, device=args.device,
                  batch_size=args.batch_size, cache_dir=args.cache_dir, show_progress=not args.quiet,
                  live_tail_s=args.live_tail)
    try:
        report = evaluate_checkpoint(args.checkpoint, **common)
        reports = {Path(args.checkpoint).parent.name or "model": report}
        if args.compare:
            other = evaluate_checkpoint(args.compare, **common)
            report["compare"] = other
            reports[Path(args.compare).parent.name or "compare"] = other
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"firstspike evaluate: {err}", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for name, r in reports.items():
        print(_headline(name, r))
        if r.get("keyword_accuracy_by_channel"):
            print(_channel_line(r["keyword_accuracy_by_channel"]))
        if r.get("live"):
            print(_live_line(r["live"]))
    if args.plot:
        print(f"plot: {plot_tradeoff(reports, args.plot)}")
    print(f"report: {args.out}")
    return 0
