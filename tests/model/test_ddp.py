"""DistributedDataParallel on gloo with 2 CPU processes: gradients agree, and `torchrun ... train` works."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from firstspike.model.classifier import SequenceClassifier
from firstspike.model.rank_coding import rc_loss
from firstspike.model.train import SpikeRunner

MASK = torch.tensor([True, True, False])


def _data(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    feats = torch.randn(6, 30, 5, generator=g)
    lengths = torch.randint(5, 31, (6,), generator=g)
    targets = torch.randint(0, 3, (6,), generator=g)
    return feats, lengths, targets


def _model():
    torch.manual_seed(0)
    clf = SequenceClassifier(5, 8, 1, 3, chrono_t_max=10)
    with torch.no_grad():
        clf.head.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))
    return clf


def _worker(rank: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    clf = _model()
    runner = nn.parallel.DistributedDataParallel(SpikeRunner(clf, MASK, 0.45, 4, "softmax"), forward_sync_buffers=False)
    feats, lengths, targets = _data(rank)
    logits, _, _, frames, _ = runner(feats, lengths)  # each rank spikes differently: a different graph per rank
    rc_loss(logits, targets, 0.1).backward()
    if rank == 0:
        torch.save({"grads": [p.grad for p in clf.parameters()], "frames": int(frames)}, out_file)
    dist.barrier()  # tear the group down together: a rank that leaves first can abort its peer's gloo threads
    dist.destroy_process_group()
    # As `firstspike train` does under torchrun: skip interpreter teardown, where a finished gloo rank
    # sometimes aborts ("terminate called without an active exception"; seen in CI) after its work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_ddp_gradients_are_the_mean_of_the_ranks(tmp_path):
    out = tmp_path / "grads.pt"
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(out)), nprocs=2, join=True)
    got = torch.load(out)
    reference = []
    for rank in range(2):
        clf = _model()
        feats, lengths, targets = _data(rank)
        logits, _, _, _, _ = SpikeRunner(clf, MASK, 0.45, 4, "softmax")(feats, lengths)
        reference.append(torch.autograd.grad(rc_loss(logits, targets, 0.1), list(clf.parameters())))
    for g, r0, r1 in zip(got["grads"], *reference):
        torch.testing.assert_close(g, (r0 + r1) / 2, atol=1e-6, rtol=1e-5)
    assert got["frames"] < int(_data(0)[1].sum()) + 4 * 6


def test_torchrun_train_two_gloo_processes(tiny_train_corpus, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "firstspike.cli", "train", "--corpus", str(tiny_train_corpus), "--out", str(run), "--epochs", "1",
           "--hidden", "16", "--batch-size", "16", "--theta", "0.5", "--device", "cpu", "--quiet",
           "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and (run / "best.pt").is_file()
    assert json.loads((run / "config.json").read_text())["summary"]["world_size"] == 2
