"""`firstspike train`: train a rank-coded (rc) or end-of-sequence (eos) keyword-spotting LSTM."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="synthetic corpus (has manifest.csv) or a Speech Commands folder")
    parser.add_argument("--task", default="sc12", choices=["sc12", "sc35"], help="label set (default: sc12)")
    parser.add_argument("--mode", default="rc", choices=["rc", "eos"], help="loss at the first spike (rc) or at the end (eos)")
    parser.add_argument("--out", required=True, help="run folder: best.pt, last.pt, metrics.jsonl, config.json")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (linear warm-up, then cosine decay)")
    parser.add_argument("--hidden", type=int, default=None, help="LSTM units per layer (default: 128, or --init's)")
    parser.add_argument("--layers", type=int, default=None, help="LSTM layers (default: 1, or --init's)")
    parser.add_argument("--pcen", action="store_true", default=None,
                        help="per-channel energy normalisation of the log-mels before the LSTM (default: off, or "
                             "--init's); measured in docs/benchmarks.md")
    parser.add_argument("--keep-logmel", action="store_true", default=None,
                        help="with --pcen: the LSTM reads the plain log-mels too, beside the PCEN features "
                             "(default: off, or --init's); measured in docs/benchmarks.md")
    parser.add_argument("--theta", type=float, default=0.9, help="spike threshold θ (rc training and read-out)")
    parser.add_argument("--beta", type=float, default=0.01,
                        help="entropy reward β (rc only): higher decides later, negative earlier with more false fires")
    parser.add_argument("--entropy", default="spike", choices=["spike", "mean"],
                        help="where β's entropy is read: at the first spike t* (default) or averaged over steps 0..t*")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    parser.add_argument("--select", default=None, choices=["clips", "engines", "keywords"],
                        help="what early stopping and best.pt go by, on validation: accuracy over all clips (default, "
                             "or the resumed run's); its mean over the engines, so one flite voice weighs as much as "
                             "14 espeak-ng variants; or accuracy on keyword clips alone. Measured in "
                             "docs/benchmarks.md (Attempt 11)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--workers", type=int, default=0, help="torch CPU threads per process (0: torch default)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--init", metavar="CHECKPOINT", default=None,
                        help="fine-tune: start from this checkpoint's weights (either mode) with a fresh optimiser and "
                             "schedule; a smaller --lr and a few --epochs suit it")
    parser.add_argument("--max-train-clips", type=int, default=None, help="train on a seeded random subset")
    parser.add_argument("--extra-train", metavar="CORPUS", action="append", default=[],
                        help="also train on this corpus's training split (repeatable), e.g. the same preset built "
                             "with another --seed; validation and test stay --corpus's. Its voices must not be "
                             "among --corpus's held-out voices; held-out unknown words are left out")
    parser.add_argument("--chunk", type=int, default=16,
                        help="LSTM steps between compactions of the batch (default: %(default)s)")
    parser.add_argument("--dropout", type=float, default=0.0,
                        help="dropout on the LSTM's outputs before the head, training only (default: %(default)s)")
    parser.add_argument("--no-specaugment", action="store_true", help="train without time/frequency masks")
    parser.add_argument("--no-time-masks", action="store_true",
                        help="SpecAugment's frequency masks only, without its time masks")
    parser.add_argument("--warp", type=float, default=0.0,
                        help="vocal-tract-length warp of the features, α in [1 - W, 1 + W] per sequence and epoch (0: off)")
    parser.add_argument("--gain-db", type=float, default=0.0, help="random gain per sequence and epoch, ±dB (0: off)")
    parser.add_argument("--eq-db", type=float, default=0.0,
                        help="random smooth EQ across the mel bands per sequence and epoch, ±dB per term (0: off)")
    parser.add_argument("--cache-dir", default=None, help="feature cache (default: CORPUS/.firstspike-cache)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    from pathlib import Path

    from firstspike.model.train import TrainConfig, run_selection, train

    if args.resume and not (Path(args.out) / "last.pt").is_file():
        print(f"firstspike train: --resume needs {Path(args.out) / 'last.pt'}, which does not exist", file=sys.stderr)
        return 2
    if not args.resume and (Path(args.out) / "metrics.jsonl").exists():
        print(f"firstspike train: {args.out} already holds a run; pick a new --out or pass --resume", file=sys.stderr)
        return 2
    from firstspike.model.checkpoint import CheckpointError, read_checkpoint

    # The model's shape, unless given, is the one of the run being resumed or of the checkpoint fine-tuned.
    # A resumed run also keeps its selection metric, against which its best so far was measured.
    hidden, layers, pcen, keep_logmel = args.hidden, args.layers, args.pcen, args.keep_logmel
    select = args.select
    shaped_by = Path(args.out) / "last.pt" if args.resume else args.init
    if shaped_by:
        try:
            checkpoint = read_checkpoint(shaped_by, map_location="cpu")
            shape = checkpoint["config"]
        except CheckpointError as err:
            print(f"firstspike train: {'--resume' if args.resume else '--init'}: {err}", file=sys.stderr)
            return 2
        hidden = shape["hidden"] if hidden is None else hidden
        layers = shape["layers"] if layers is None else layers
        pcen = shape.get("pcen", False) if pcen is None else pcen  # a mismatch is refused when the weights load
        keep_logmel = shape.get("keep_logmel", False) if keep_logmel is None else keep_logmel
        if args.resume and select is None:
            select = run_selection(checkpoint)
    hidden, layers = 128 if hidden is None else hidden, 1 if layers is None else layers
    pcen, keep_logmel = bool(pcen), bool(keep_logmel)
    select = "clips" if select is None else select
    try:
        cfg = TrainConfig(
            corpus=args.corpus, out=args.out, task=args.task, mode=args.mode, epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, hidden=hidden, layers=layers, pcen=pcen, keep_logmel=keep_logmel,
            theta=args.theta, beta=args.beta, entropy=args.entropy, seed=args.seed, patience=args.patience, select=select,
            device=args.device, workers=args.workers, resume=args.resume, init=args.init, max_train_clips=args.max_train_clips,
            extra_train=tuple(args.extra_train), chunk=args.chunk,
            dropout=args.dropout, specaugment=not args.no_specaugment, time_masks=not args.no_time_masks, warp=args.warp, gain_db=args.gain_db, eq_db=args.eq_db,
            cache_dir=args.cache_dir, progress=not args.quiet,
        )
    except ValueError as err:
        print(f"firstspike train: {err}", file=sys.stderr)
        return 2
    from firstspike.model.data.audio import AudioError
    from firstspike.model.data.corpus import CorpusError

    try:
        result = train(cfg)
    except (CorpusError, AudioError, CheckpointError) as err:
        print(f"firstspike train: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"best {result['select_key']} = {result['best_metric']:.4f} after {result['epochs_run']} epochs; "
              f"checkpoints in {args.out}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Every rank has passed train()'s final barrier and destroyed its process group, and rank 0 has written
        # the checkpoints. What is left is interpreter teardown, where a finished rank was twice seen to abort
        # (SIGABRT, "terminate called without an active exception" from a C++ thread), so that torchrun
        # reported a failed run. Leave without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
