"""Side-by-side cost of an `rc` and an `eos` training epoch, in one process, from the same weights.

Why from a checkpoint: rank coding saves compute only once the model spikes, so the fair comparison
starts both modes from the same trained weights and alternates their epochs (rc, eos, rc, eos, ...)
so machine load hits both alike. Weights are restored before every epoch; batches are the same.
Several `--chunk` values are interleaved too, in an order that rotates every repeat, so a drift in
the machine's speed does not favour the one measured first.

    python -m firstspike.model.mode_benchmark RUN/best.pt --corpus DIR [--repeats 3] [--chunk 8 16 32]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from firstspike.model.checkpoint import CheckpointError, load_checkpoint
from firstspike.model.feature_augment import spec_augment
from firstspike.model.features import default_cache_dir, load_features
from firstspike.model.rank_coding import rc_loss
from firstspike.model.train import SpikeRunner, TrainConfig, bucketed_batches, time_dependent_targets


def one_epoch(model, data, theta: float, beta: float, batch_size: int, chunk: int, seed: int) -> dict:
    """Train one epoch on a copy of `model`; return wall and CPU seconds and frames computed."""
    model = copy.deepcopy(model).train()
    clf = model.classifier
    opt = torch.optim.AdamW(clf.parameters(), lr=1e-3)
    runner = SpikeRunner(clf, model.firing_mask, theta, chunk, model.config.head)
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    batches = bucketed_batches(np.arange(len(data)), data.lengths, batch_size, rng)
    frames = available = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in batches:
        feats, lengths = data.batch(idx)
        feats = spec_augment(model.prepare(feats, lengths), lengths, gen)
        logits, t_star, _, used, _ = runner(feats, lengths)
        loss = rc_loss(logits, time_dependent_targets(data, idx, t_star), beta, model.config.head)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        frames += int(used)
        available += int(lengths.sum())
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "frames_fraction": frames / available}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk", type=int, nargs="+", default=[TrainConfig.chunk],
                        help="LSTM steps per call; several are compared side by side (default: training's, %(default)s)")
    parser.add_argument("--theta", type=float, default=None, help="default: the checkpoint's threshold")
    parser.add_argument("--beta", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.chunk) < 1:
        parser.error("--repeats and every --chunk must be at least 1")
    from firstspike.model.data.audio import load_wav
    from firstspike.model.data.corpus import open_corpus

    torch.set_num_threads(args.threads)
    try:
        model, ckpt = load_checkpoint(args.checkpoint)
        corpus = open_corpus(args.corpus, task=ckpt["train_summary"].get("task", "sc12"))
        data = load_features(corpus, args.split, model.frontend, default_cache_dir(args.corpus), load_wav)
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        print(f"mode_benchmark: {err}", file=sys.stderr)
        return 2
    theta = ckpt["threshold"] if args.theta is None else args.theta
    chunks = list(dict.fromkeys(args.chunk))
    results: dict[tuple[int, str], list[dict]] = {}
    for rep in range(args.repeats):
        turn = rep % len(chunks)
        for chunk in chunks[turn:] + chunks[:turn]:
            for mode in ("rc", "eos"):
                r = one_epoch(model, data, theta if mode == "rc" else math.inf, args.beta if mode == "rc" else 0.0,
                              args.batch_size, chunk, seed=rep)
                results.setdefault((chunk, mode), []).append(r)
                print(f"repeat {rep + 1} chunk {chunk:>3} {mode:>3}: wall {r['wall_s']:.2f} s  cpu {r['cpu_s']:.2f} s  "
                      f"frames {r['frames_fraction']:.3f}", flush=True)
    by_chunk = {}
    for chunk in chunks:
        summary = {mode: {k: statistics.median(r[k] for r in results[(chunk, mode)]) for k in results[(chunk, mode)][0]}
                   for mode in ("rc", "eos")}
        summary["rc_over_eos"] = {k: summary["rc"][k] / summary["eos"][k] for k in ("wall_s", "cpu_s", "frames_fraction")}
        by_chunk[str(chunk)] = summary
    report = {"chunks": by_chunk, "checkpoint": str(Path(args.checkpoint).resolve()), "split": args.split,
              "theta": theta, "sequences": len(data), "frames_available": int(data.lengths.sum()),
              "repeats": args.repeats, "batch_size": args.batch_size, "threads": args.threads}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
