"""Train a keyword-spotting LSTM with rank coding (`rc`) or at the end of each sequence (`eos`).

Both modes share the model, data, features and budget and the same compacting runner
(`rank_coding.forward_until_spike`): `rc` stops each sequence at its first spike (threshold θ) and
takes the loss there, minus β × output entropy (read at t*, or with `entropy="mean"` averaged over the
steps up to t*); `eos` runs each sequence to its own end (θ = ∞).

Time-dependent targets (ours): a sequence with a firing label that spikes *before* its keyword
onset frame is trained toward a filler (`_unknown_` for streams, `_silence_` otherwise), so the model
is not taught to fire on the speech or silence that precedes a command.

Runs on one process, or under `torchrun --nproc_per_node N` with DistributedDataParallel (gloo on
CPU, nccl on CUDA); only rank 0 validates and writes files.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from firstspike.model.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from firstspike.model.classifier import KeywordSpotter, ModelConfig, SequenceClassifier
from firstspike.model.feature_augment import TIME_MASKS, FeatureAugment, spec_augment
from firstspike.model.features import FeatureSet, concat_feature_sets, default_cache_dir, load_features
from firstspike.model.inference import decide, sequence_probabilities
from firstspike.model.labels import UNKNOWN
from firstspike.model.rank_coding import ENTROPY_READINGS, forward_until_spike, rc_loss

MODES = ("rc", "eos")
# What "best" means for early stopping and best.pt: accuracy over every validation clip; the mean of the
# per-engine accuracies, so that an engine with one voice weighs as much as one with fourteen; or accuracy
# over the keyword clips alone, the figure the held-out targets are stated in.
SELECTIONS = ("clips", "engines", "keywords")


@dataclass
class TrainConfig:
    corpus: str
    out: str
    task: str = "sc12"
    mode: str = "rc"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    hidden: int = 128
    layers: int = 1
    pcen: bool = False  # per-channel energy normalisation of the log-mels (model/pcen.py)
    keep_logmel: bool = False  # with pcen: the LSTM reads the log-mels beside the PCEN features
    theta: float = 0.9
    beta: float = 0.01
    entropy: str = "spike"
    seed: int = 0
    patience: int = 5
    select: str = "clips"
    device: str = "auto"
    workers: int = 0
    resume: bool = False
    init: str | None = None  # start from this checkpoint's weights and normalisation: a fine-tune
    max_train_clips: int | None = None
    extra_train: tuple[str, ...] = ()  # more corpora whose training splits join this corpus's (same task)
    chunk: int = 16  # LSTM steps per call; 8 made epochs 13-30 % (rc) and 9-11 % (eos) dearer (docs/benchmarks.md)
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    dropout: float = 0.0  # on the LSTM's outputs before the head, training only
    specaugment: bool = True
    time_masks: bool = True  # SpecAugment's time masks (off: its frequency masks only)
    warp: float = 0.0
    gain_db: float = 0.0
    eq_db: float = 0.0
    cache_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.select not in SELECTIONS:
            raise ValueError(f"select must be one of {SELECTIONS}, got {self.select!r}")
        if self.entropy not in ENTROPY_READINGS:
            raise ValueError(f"entropy must be one of {ENTROPY_READINGS}, got {self.entropy!r}")
        if not 0.0 < self.theta <= 1.0:
            raise ValueError(f"theta must lie in (0, 1], got {self.theta}")
        for name in ("epochs", "batch_size", "hidden", "layers", "chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.lr <= 0 or not math.isfinite(self.beta) or self.patience < 1:
            raise ValueError("need lr > 0, a finite beta and patience >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.keep_logmel and not self.pcen:
            raise ValueError("--keep-logmel keeps the log-mels beside PCEN's features: it needs --pcen")
        if not 0.0 <= self.warp < 0.5 or self.gain_db < 0 or self.eq_db < 0:
            raise ValueError(f"need 0 <= warp < 0.5, gain_db >= 0 and eq_db >= 0, got warp={self.warp}, "
                             f"gain_db={self.gain_db}, eq_db={self.eq_db}")


# -- distributed plumbing ----------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def _setup(device_arg: str) -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    d = Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device_arg == "auto":
        device_arg = "cuda" if torch.cuda.is_available() else "cpu"
    if device_arg.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but CUDA is not available")
    if device_arg == "cuda" and d.active:
        device_arg = f"cuda:{d.local_rank}"
    device = torch.device(device_arg)
    if d.active and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def _all_sum(values: list[float], d: Dist) -> list[float]:
    if not d.active:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


# -- batching ----------------------------------------------------------------------------------
def bucketed_batches(indices: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length (clips ≈ 100 frames and streams ≈ 300–1000 don't mix), in random order.

    Sorting by length with a little noise keeps padding small while batches still vary per epoch.
    """
    noisy = lengths[indices] * rng.uniform(0.9, 1.1, size=len(indices))
    order = indices[np.argsort(noisy, kind="stable")]
    batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def warmup_cosine(total_steps: int, warmup: float = 0.05, floor: float = 0.02):
    """LR factor: linear warm-up, then cosine decay to `floor`. A plain function of the step, so a
    resumed run with more epochs simply stretches the schedule."""
    warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class SpikeRunner(nn.Module):
    """Wraps `forward_until_spike` as a module so DistributedDataParallel can hook its forward."""

    def __init__(self, classifier: SequenceClassifier, firing_mask: torch.Tensor, theta: float, chunk: int, head: str,
                 step_entropy: bool = False, dropout: float = 0.0):
        super().__init__()
        self.classifier = classifier
        self.register_buffer("firing_mask", firing_mask, persistent=False)
        self.theta, self.chunk, self.head, self.step_entropy, self.dropout = theta, chunk, head, step_entropy, dropout

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        res = forward_until_spike(self.classifier, feats, lengths, self.firing_mask, self.theta, self.chunk, self.head,
                                  step_entropy=self.step_entropy, dropout=self.dropout)
        return res.logits_at_t, res.t_star, res.spiked, torch.tensor(res.frames_computed), res.mean_entropy


def time_dependent_targets(data: FeatureSet, idx: np.ndarray, t_star: torch.Tensor) -> torch.Tensor:
    """The label, or its filler when the decision came before the keyword onset."""
    early = t_star.cpu().numpy() < data.onset_frames[idx]
    return torch.from_numpy(np.where(early, data.early_targets[idx], data.targets[idx]))


# -- validation --------------------------------------------------------------------------------
def validate(model: KeywordSpotter, data: FeatureSet, theta: float, device, batch_size: int) -> dict:
    """Accuracy at first spike (θ) and at the end: overall, on keyword clips, per engine; spiked share; mean (t*+1)/T.

    Background-only clips form their own engine (`noise`), as in the corpus manifest. The per-engine
    means are what `select="engines"` stops on, the keyword accuracies what `select="keywords"` does.
    """
    probs = sequence_probabilities(model, data, batch_size, device)
    mask = model.config.firing_mask.numpy()
    first = decide(probs, mask, theta)
    end = np.array([int(np.argmax(p[-1])) for p in probs])
    engines = np.array([row.engine for row in data.rows])
    keywords = mask[data.targets]
    metrics = {
        "val_acc_first_spike": float(np.mean(first.predicted == data.targets)),
        "val_acc_end": float(np.mean(end == data.targets)),
        "val_spiked": float(np.mean(first.spiked)),
        "val_mean_rel_t": float(np.mean((first.t_star + 1) / first.lengths)),
    }
    for reading, predicted in (("first_spike", first.predicted), ("end", end)):
        by_engine = {str(e): float(np.mean(predicted[engines == e] == data.targets[engines == e]))
                     for e in sorted(set(engines))}
        metrics[f"val_acc_{reading}_by_engine"] = by_engine
        metrics[f"val_acc_{reading}_engine_mean"] = float(np.mean(list(by_engine.values())))
        metrics[f"val_acc_{reading}_keywords"] = float(np.mean(predicted[keywords] == data.targets[keywords]))
    return metrics


def run_selection(checkpoint: dict) -> str:
    """The `select` a checkpoint's run stopped on; runs from before `--select` stopped on all clips."""
    return checkpoint.get("train_config", {}).get("select", "clips")


def selection_key(mode: str, select: str) -> str:
    """The validation metric that picks best.pt: what the mode optimises, read as `select` says."""
    reading = "val_acc_first_spike" if mode == "rc" else "val_acc_end"
    return {"clips": reading, "engines": f"{reading}_engine_mean", "keywords": f"{reading}_keywords"}[select]


# -- the loop ----------------------------------------------------------------------------------
def _open_corpus(path: str, task: str):
    from firstspike.model.data.corpus import open_corpus  # the data engineer's loader

    return open_corpus(path, task=task)


def _extra_training_split(path: str, corpus, cfg: TrainConfig, model: KeywordSpotter, load_wav,
                          show: bool) -> FeatureSet:
    """Another corpus's training split, kept honest against the main corpus's held-out splits.

    A voice that the main corpus holds out must not be trained on: that is an error. Unknown words that
    only its held-out splits say are dropped, so false fires on unseen words stay measured on unseen words.
    """
    from firstspike.model.data.corpus import CorpusError

    extra = _open_corpus(path, cfg.task)
    held_out = [row for split in ("val", "test") for row in corpus.rows(split)]
    held_voices = {row.voice for row in held_out if row.voice}  # background-only clips have none
    shared = sorted({row.voice for row in extra.rows("train")} & held_voices)
    if shared:
        raise CorpusError(f"--extra-train {path}: its training split has voices that {cfg.corpus} holds out for "
                          f"validation or test ({', '.join(shared[:5])}{', ...' if len(shared) > 5 else ''}); "
                          "training on them would overstate held-out accuracy")
    held_words = ({row.word for row in held_out if row.label == UNKNOWN}
                  - {row.word for row in corpus.rows("train")})
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(path)
    return load_features(extra, "train", model.frontend, cache, load_wav, None, cfg.seed, show,
                         keep=lambda row: not (row.label == UNKNOWN and row.word in held_words))


def _load_wav():
    from firstspike.model.data.audio import load_wav

    return load_wav


def train(cfg: TrainConfig) -> dict:
    """Train per `cfg`; returns the training summary (also stored in the checkpoints)."""
    d, device = _setup(cfg.device)
    try:
        summary = _train(cfg, d, device)
        if d.active:
            # Every rank finishes before any tears the group down: a rank that leaves first can abort
            # a peer still inside gloo (seen once, under heavy load, as SIGABRT in the 2-process test).
            dist.barrier()
        return summary
    finally:
        if d.active and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, d: Dist, device: torch.device) -> dict:
    if cfg.workers > 0:
        torch.set_num_threads(cfg.workers)
    elif d.active:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    out = Path(cfg.out)
    show = cfg.progress and d.main
    corpus = _open_corpus(cfg.corpus, cfg.task)
    model_cfg = ModelConfig(list(corpus.labels), list(corpus.firing_labels), hidden=cfg.hidden,
                            layers=cfg.layers, threshold=cfg.theta, pcen=cfg.pcen,
                            keep_logmel=cfg.keep_logmel)
    torch.manual_seed(cfg.seed)
    model = KeywordSpotter(model_cfg)
    cache = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir(cfg.corpus)
    load_wav = _load_wav()
    # Rank 0 fills the cache first so the other ranks only read it.
    if d.active and not d.main:
        dist.barrier()
    train_set = load_features(corpus, "train", model.frontend, cache, load_wav, cfg.max_train_clips, cfg.seed, show)
    if cfg.extra_train:
        train_set = concat_feature_sets([train_set] + [
            _extra_training_split(path, corpus, cfg, model, load_wav, show) for path in cfg.extra_train])
    val_set = load_features(corpus, "val", model.frontend, cache, load_wav, None, cfg.seed, show)
    if d.active and d.main:
        dist.barrier()
    model.fit_normalisation(train_set)
    model.to(device)

    theta = cfg.theta if cfg.mode == "rc" else math.inf
    beta = cfg.beta if cfg.mode == "rc" else 0.0
    step_entropy = beta != 0 and cfg.entropy == "mean"
    runner = SpikeRunner(model.classifier, model.firing_mask, theta, cfg.chunk, model_cfg.head, step_entropy,
                         cfg.dropout).to(device)
    if d.active:
        runner = nn.parallel.DistributedDataParallel(
            runner, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=False,
            forward_sync_buffers=False)  # the only buffer, the firing mask, is the same on every rank

    per_rank = math.ceil(len(train_set) / d.world)
    steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
    optimizer = torch.optim.AdamW(model.classifier.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(cfg.epochs * steps_per_epoch))
    start_epoch, best, bad_epochs = 0, -1.0, 0
    if cfg.resume:
        start_epoch, best, bad_epochs = _resume(out / "last.pt", model, optimizer, scheduler, cfg, device)
    elif cfg.init:
        # A fine-tune: another run's weights (either mode) with a fresh optimiser and schedule. Its feature
        # normalisation comes along, because its weights were learned against it.
        _load_weights(Path(cfg.init), model, device, "start from")
    summary_base = {"corpus": corpus.summary(), "task": cfg.task, "mode": cfg.mode, "init": cfg.init,
                    "select": cfg.select, "theta": cfg.theta, "beta": beta, "entropy": cfg.entropy, "train_clips": len(train_set),
                    "val_clips": len(val_set), "world_size": d.world, "seed": cfg.seed}
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"train": asdict(cfg), "model": model_cfg.to_dict(),
                                                     "summary": summary_base}, indent=2))
    sampler = torch.utils.data.DistributedSampler(range(len(train_set)), num_replicas=d.world, rank=d.rank,
                                                  shuffle=True, seed=cfg.seed)
    select_key = selection_key(cfg.mode, cfg.select)
    augment = FeatureAugment(warp=cfg.warp, gain_db=cfg.gain_db, eq_db=cfg.eq_db)
    centres = model.frontend.band_centres_hz
    history: list[dict] = []
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        t0, cpu0 = time.perf_counter(), time.process_time()
        sampler.set_epoch(epoch)
        rng = np.random.default_rng([cfg.seed, epoch, d.rank])
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch * 101 + d.rank)
        mine = np.fromiter(iter(sampler), dtype=np.int64)
        batches = bucketed_batches(mine, train_set.lengths, cfg.batch_size, rng)
        runner.train()
        totals = np.zeros(6)  # loss*n, n, frames computed, frames available, sum rel t, spiked
        bar = tqdm(batches, desc=f"{cfg.mode} epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not show, leave=False)
        for idx in bar:
            feats, lengths = train_set.batch(idx)
            feats = model.prepare(augment.augment_raw(feats, centres, gen).to(device), lengths.to(device)).cpu()
            if cfg.specaugment:
                feats = spec_augment(feats, lengths, gen, time_masks=TIME_MASKS if cfg.time_masks else 0)
            feats, lengths = feats.to(device), lengths.to(device)
            logits, t_star, spiked, frames, mean_entropy = runner(feats, lengths)
            targets = time_dependent_targets(train_set, idx, t_star).to(device)
            loss = rc_loss(logits, targets, beta, model_cfg.head, entropy=mean_entropy)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.classifier.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            n = len(idx)
            totals += [loss.item() * n, n, int(frames), int(lengths.sum()),
                       float(((t_star + 1).float() / lengths.float()).sum()), int(spiked.sum())]
            bar.set_postfix(loss=f"{totals[0] / totals[1]:.3f}", frames=f"{totals[2] / totals[3]:.2f}")
        train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        totals = [float(x) for x in _all_sum(totals.tolist(), d)]
        stop = torch.zeros(1)
        if d.main:
            metrics = {"epoch": epoch + 1, "mode": cfg.mode, "train_loss": totals[0] / totals[1],
                       "train_frames_fraction": totals[2] / totals[3], "train_mean_rel_t": totals[4] / totals[1],
                       "train_spiked": totals[5] / totals[1], "lr": scheduler.get_last_lr()[0],
                       **validate(model, val_set, cfg.theta, device, cfg.batch_size),
                       "epoch_train_s": train_s, "epoch_train_cpu_s": train_cpu_s, "epoch_s": time.perf_counter() - t0}
            history.append(metrics)
            with open(out / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(metrics) + "\n")
            improved = metrics[select_key] > best
            if improved:
                best, bad_epochs = metrics[select_key], 0
            else:
                bad_epochs += 1
            summary = {**summary_base, "epochs": epoch + 1, "best": {select_key: best}, "metrics": metrics}
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                     "best_metric": best, "bad_epochs": bad_epochs, "train_config": asdict(cfg)}
            if improved:
                save_checkpoint(out / "best.pt", model, cfg.mode, summary, **state)
            save_checkpoint(out / "last.pt", model, cfg.mode, summary, **state)
            if show:
                tqdm.write(f"epoch {epoch + 1}: loss {metrics['train_loss']:.3f}  frames {metrics['train_frames_fraction']:.2f}  "
                           f"val first-spike {metrics['val_acc_first_spike']:.3f}  end {metrics['val_acc_end']:.3f}  "
                           f"t*/T {metrics['val_mean_rel_t']:.2f}  {metrics['epoch_s']:.1f}s")
            stop[0] = float(bad_epochs >= cfg.patience)
        if d.active:
            dist.broadcast(stop, src=0)
        if stop.item():
            if show:
                tqdm.write(f"early stop: no better {select_key} for {cfg.patience} epochs")
            break
    return {"best_metric": best, "select_key": select_key, "epochs_run": epoch + 1 - start_epoch, "history": history}


def _load_weights(path: Path, model: KeywordSpotter, device, action: str) -> None:
    """Copy a checkpoint's weights and feature normalisation into `model`, which must have its shape."""
    loaded, _ = load_checkpoint(path)
    mine, theirs = model.config.to_dict(), loaded.config.to_dict()
    differ = [k for k in ("labels", "hidden", "layers", "pcen", "keep_logmel", "n_mels", "hop_ms", "window_ms") if mine[k] != theirs[k]]
    if differ:
        said = [f"labels ({len(theirs['labels'])} there, {len(mine['labels'])} here: pick the --task it was trained for)"
                if k == "labels" else f"{k} ({theirs[k]} there, {mine[k]} here)" for k in differ]
        raise CheckpointError(f"cannot {action}: {path} differs from this run in {', '.join(said)}")
    model.load_state_dict(loaded.state_dict())
    model.to(device)


def _resume(path: Path, model: KeywordSpotter, optimizer, scheduler, cfg: TrainConfig, device) -> tuple[int, float, int]:
    data = read_checkpoint(path, map_location="cpu")
    if data["mode"] != cfg.mode:
        raise CheckpointError(f"cannot resume: {path} was trained in mode {data['mode']!r}, not {cfg.mode!r}")
    # Its best so far was measured on its own selection metric; another one would compare unlike numbers.
    was = run_selection(data)
    if was != cfg.select:
        raise CheckpointError(f"cannot resume: {path} selects on --select {was}, not {cfg.select}; "
                              f"resume with --select {was}")
    _load_weights(path, model, device, "resume")
    optimizer.load_state_dict(data["optimizer"])
    scheduler.load_state_dict(data["scheduler"])
    return int(data["epoch"]), float(data["best_metric"]), int(data["bad_epochs"])
