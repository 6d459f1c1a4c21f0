"""Train and evaluate the paper's toy problems and temporally-coded digits, rank coding (RC) against EOS.

    python -m bench.repro.run noise  --mode rc eos --seeds 0 1 2
    python -m bench.repro.run seq5   --mode rc eos
    python -m bench.repro.run digits --mode rc eos [--mnist-dir DIR]
    python -m bench.repro.run noise  --mode rc --beta 0 0.02 0.05 0.1 0.2     # β sweep

The RC mechanics are firstspike's own (`firstspike.model.rank_coding`): training runs
`forward_until_spike` (which drops sequences from the batch as they spike; θ = ∞ is EOS) and
`rc_loss`; evaluation runs the whole sequence and reads it out with `first_spike`. Every run is written
as JSON under bench/repro/results/, which `bench.repro.report` turns into docs/reproduction.md's tables.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TASKS = ("noise", "seq5", "digits")
NOISE_LEVEL_EDGES = (0.05, 0.09, 0.13, 0.17, 0.21, 0.25)
EVAL_SEED = 20_220_425  # one fixed evaluation set per task, shared by every mode, β and seed


@dataclass
class RunConfig:
    """Everything that determines one training run (saved next to its results)."""

    task: str
    mode: str  # "rc" or "eos"
    seed: int = 0
    theta: float = 0.95
    beta: float = 0.0
    hidden: int = 32
    layers: int = 1
    lr: float = 3e-3
    batch: int = 128
    examples: int = 256_000  # toys: freshly generated training examples
    epochs: int = 60  # digits: passes over the training split
    eval_examples: int = 10_000
    bins: int = 20
    chunk: int = 8
    schedule: str = "onecycle"  # "onecycle" (short CPU runs) or "constant" (the released code's plain Adam)
    grad_clip: float = 1.0  # 0: off
    device: str = "cpu"
    mnist_dir: str | None = None
    eval_thetas: list[float] = field(default_factory=lambda: [0.8, 0.9, 0.95, 0.99, 0.999])

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {TASKS}")
        if self.mode not in ("rc", "eos"):
            raise ValueError(f"mode must be rc or eos, got {self.mode!r}")
        if not 0.5 < self.theta <= 1.0:
            raise ValueError(f"theta must lie in (0.5, 1], got {self.theta}")
        if self.schedule not in ("onecycle", "constant"):
            raise ValueError(f"schedule must be onecycle or constant, got {self.schedule!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        for name in ("hidden", "layers", "batch", "examples", "epochs", "eval_examples", "bins", "chunk"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def train_theta(self) -> float:
        """θ used while training: the spike threshold for RC, ∞ (never spike, loss at the end) for EOS."""
        return self.theta if self.mode == "rc" else math.inf

    @property
    def name(self) -> str:
        bins = f"-bins{self.bins}" if self.task == "digits" else ""
        source = "-mnist" if self.mnist_dir else ""
        return f"{self.task}{source}{bins}-{self.mode}-beta{self.beta:g}-seed{self.seed}"


# --- data ----------------------------------------------------------------------------------------------


@dataclass
class TaskData:
    """A task's training source and its fixed test set."""

    n_in: int
    n_classes: int
    steps: int
    test: "tasks.TaskBatch"  # noqa: F821
    train: "tasks.TaskBatch | None" = None  # fixed training split (digits); None: generate on the fly

    def batches(self, config: RunConfig, rng: np.random.Generator):
        """Yield (inputs [B, T, F], labels [B]) numpy batches for one whole training run."""
        from bench.repro import tasks

        if self.train is None:
            make = tasks.noise_vs_signal if config.task == "noise" else tasks.sequence_of_five
            for _ in range(math.ceil(config.examples / config.batch)):
                b = make(config.batch, rng)
                yield b.x, b.y
            return
        for _ in range(config.epochs):
            order = rng.permutation(len(self.train))
            for start in range(0, len(order), config.batch):
                index = np.sort(order[start: start + config.batch])
                yield self.train.inputs(index), self.train.y[index]

    def n_batches(self, config: RunConfig) -> int:
        if self.train is None:
            return math.ceil(config.examples / config.batch)
        return config.epochs * math.ceil(len(self.train) / config.batch)


def load_task(config: RunConfig) -> TaskData:
    from bench.repro import tasks

    eval_rng = np.random.default_rng(EVAL_SEED)
    if config.task == "noise":
        return TaskData(1, 2, tasks.NOISE_STEPS, tasks.noise_vs_signal(config.eval_examples, eval_rng))
    if config.task == "seq5":
        return TaskData(1, 2, tasks.SEQ5_LENGTH, tasks.sequence_of_five(config.eval_examples, eval_rng))
    if config.mnist_dir:
        train, test = tasks.mnist_idx(config.mnist_dir, config.bins)
    else:
        train, test = tasks.sklearn_digits(config.bins, eval_rng)
    return TaskData(train.n_in, 10, config.bins, test, train)


# --- training ------------------------------------------------------------------------------------------


def train(config: RunConfig, data: TaskData, progress: bool = True):
    """Train a SequenceClassifier with firstspike's RC machinery; return (model, training summary)."""
    import torch
    from tqdm import tqdm

    from firstspike.model.classifier import SequenceClassifier
    from firstspike.model.rank_coding import forward_until_spike, rc_loss

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    device = torch.device(config.device)
    # chrono init spans the task's own horizon rather than the speech model's 100 frames
    model = SequenceClassifier(data.n_in, config.hidden, config.layers, data.n_classes,
                               chrono_t_max=max(3.0, float(data.steps))).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    firing_mask = torch.ones(data.n_classes, dtype=torch.bool)  # every class may fire in these tasks
    total = data.n_batches(config)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=total)
                 if config.schedule == "onecycle" else None)
    # EOS never leaves the batch early, so it runs the whole sequence in one LSTM call: its fastest form
    chunk = config.chunk if config.mode == "rc" else data.steps
    frames = frames_full = 0
    mean_t_history: list[float] = []
    window_t: list[float] = []
    started = time.perf_counter()
    bar = tqdm(data.batches(config, rng), total=total, desc=config.name, disable=not progress, leave=False)
    model.train()
    for i, (x, y) in enumerate(bar):
        feats = torch.from_numpy(x).to(device)
        targets = torch.from_numpy(y).to(device)
        lengths = torch.full((len(y),), feats.shape[1], dtype=torch.long, device=device)
        result = forward_until_spike(model, feats, lengths, firing_mask, config.train_theta, chunk)
        loss = rc_loss(result.logits_at_t, targets, config.beta)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        frames += result.frames_computed
        frames_full += feats.shape[0] * feats.shape[1]
        window_t.append(float(result.t_star.float().mean()) + 1)
        if len(window_t) == max(1, total // 50) or i == total - 1:
            mean_t_history.append(float(np.mean(window_t)))
            window_t = []
            bar.set_postfix(loss=f"{loss.item():.3f}", t_star=f"{mean_t_history[-1]:.1f}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    summary = {
        "train_wall_s": wall,
        "train_frames_computed": frames,
        "train_frames_full": frames_full,
        "train_frame_fraction": frames / frames_full,
        "train_batches": total,
        "train_chunk": chunk,
        "train_mean_spike_step_history": mean_t_history,
    }
    return model, summary


# --- evaluation ----------------------------------------------------------------------------------------


def evaluate(model, config: RunConfig, data: TaskData) -> dict:
    """Full-sequence outputs on the fixed test set, read out by the first-spike rule at several θ."""
    import torch

    from firstspike.model.rank_coding import first_spike

    device = next(model.parameters()).device
    model.eval()
    probs = []
    with torch.no_grad():
        for start in range(0, len(data.test), 1024):
            feats = torch.from_numpy(data.test.inputs(slice(start, start + 1024))).to(device)
            logits, _ = model(feats)
            probs.append(torch.softmax(logits, dim=-1).cpu())
    probs_t = torch.cat(probs)  # [N, T, K]
    y = torch.from_numpy(data.test.y)
    firing_mask = torch.ones(data.n_classes, dtype=torch.bool)
    correct_by_step = (probs_t.argmax(-1) == y[:, None]).float().mean(0).numpy()

    def readout(theta: float) -> dict:
        t_star, spiked = first_spike(probs_t, firing_mask, theta)
        pred = probs_t[torch.arange(len(y)), t_star].argmax(-1)
        correct = (pred == y).numpy()
        steps = t_star.numpy() + 1  # 1-based: "decided after step k"
        out = {
            "theta": theta,
            "accuracy": float(correct.mean()),
            "mean_spike_step": float(steps.mean()),
            "never_spiked": float(1 - spiked.float().mean()),
            "decided_at_step1": float((steps == 1).mean()),
        }
        out.update(task_breakdown(config.task, data.test, correct, steps, spiked.numpy()))
        return out

    thetas = sorted(set(config.eval_thetas) | {config.theta})
    return {
        "steps": data.steps,
        "accuracy_by_step": correct_by_step.tolist(),
        "accuracy_last_step": float(correct_by_step[-1]),
        "accuracy_step1": float(correct_by_step[0]),
        "accuracy_best_step": float(correct_by_step.max()),
        "at_theta": readout(config.theta),
        "theta_sweep": [readout(t) for t in thetas],
    }


def task_breakdown(task: str, test, correct: np.ndarray, steps: np.ndarray, spiked: np.ndarray) -> dict:
    """Per-task detail: accuracy by noise level (noise), spike timing against the ideal step (seq5)."""
    if task == "noise":
        std = test.extras["noise_std"]
        rows = []
        for lo, hi in zip(NOISE_LEVEL_EDGES[:-1], NOISE_LEVEL_EDGES[1:]):
            sel = (std >= lo) & (std < hi) if hi < NOISE_LEVEL_EDGES[-1] else (std >= lo) & (std <= hi)
            rows.append({"noise_std": [lo, hi], "n": int(sel.sum()), "accuracy": float(correct[sel].mean()),
                         "mean_spike_step": float(steps[sel].mean()), "never_spiked": float(1 - spiked[sel].mean())})
        return {"by_noise": rows}
    if task == "seq5":
        ideal = test.extras["ideal_step"] + 1  # 1-based like `steps`
        pos = test.y == 1
        lag = steps[pos] - ideal[pos]
        good = pos & (correct == 1)
        neg = ~pos
        return {
            "positives": {
                "n": int(pos.sum()),
                "accuracy": float(correct[pos].mean()),
                "mean_ideal_step": float(ideal[pos].mean()),
                "mean_spike_step": float(steps[pos].mean()),
                "mean_lag": float(lag.mean()),
                "share_before_ideal": float((lag < 0).mean()),
                "share_at_ideal": float((lag == 0).mean()),
                "share_within_2": float(((lag >= 0) & (lag <= 2)).mean()),
                "mean_lag_correct": float((steps[good] - ideal[good]).mean()) if good.any() else None,
                "by_ideal_step": [
                    {"ideal_step": int(k), "n": int((ideal[pos] == k).sum()),
                     "mean_spike_step": float(steps[pos][ideal[pos] == k].mean()),
                     "accuracy": float(correct[pos][ideal[pos] == k].mean())}
                    for k in np.unique(ideal[pos])
                ],
            },
            "negatives": {
                "n": int(neg.sum()),
                "accuracy": float(correct[neg].mean()),
                "mean_spike_step": float(steps[neg].mean()),
                "mean_certain_step": float(test.extras["certain_step"][neg].mean() + 1),
            },
        }
    return {}


# --- driver --------------------------------------------------------------------------------------------


def run_one(config: RunConfig, progress: bool = True, data: TaskData | None = None) -> dict:
    data = data or load_task(config)
    model, summary = train(config, data, progress)
    result = {"config": asdict(config), "train": summary, "eval": evaluate(model, config, data)}
    result["environment"] = environment(config)
    return result


def environment(config: RunConfig) -> dict:
    import platform

    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "device": config.device,
           "torch_threads": torch.get_num_threads()}
    if config.device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


PAPER_SCALE = {"hidden": 125, "lr": 3e-4, "batch": 128, "examples": 2_000_000, "schedule": "constant"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=TASKS, help="noise (noise vs signal), seq5 (sequence of 5), digits")
    parser.add_argument("--mode", nargs="+", choices=("rc", "eos"), default=["rc", "eos"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--beta", nargs="+", type=float, default=[0.0], help="entropy reward β; several = a sweep")
    parser.add_argument("--theta", type=float, default=0.95, help="spike threshold θ (training and read-out)")
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--examples", type=int, help="toys: generated training examples")
    parser.add_argument("--epochs", type=int, help="digits: passes over the training split")
    parser.add_argument("--eval-examples", type=int, default=10_000, help="toys: size of the fixed test set")
    parser.add_argument("--bins", type=int, default=20, help="digits: time bins of the latency code")
    parser.add_argument("--chunk", type=int, help="RC training: steps between batch compactions (toys 8, digits 1)")
    parser.add_argument("--mnist-dir", help="digits: folder with MNIST IDX files (gz or not) instead of sklearn's 8x8")
    parser.add_argument("--paper-scale", action="store_true",
                        help="released code's sizes: 125 hidden, Adam 3e-4, batch 128, 2M examples (for a GPU)")
    parser.add_argument("--schedule", choices=("onecycle", "constant"),
                        help="learning-rate schedule (default onecycle; constant with --paper-scale, as released)")
    parser.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip, 0 = off")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for these small models)")
    parser.add_argument("--tag", default="", help="suffix for the result files (keeps sweeps apart)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-progress", action="store_true")


DEFAULTS = {  # per-task CPU defaults: each run finishes in well under 3 minutes on 2 shared cores
    "noise": {"hidden": 32, "lr": 3e-3, "batch": 128, "examples": 128_000, "chunk": 8},
    "seq5": {"hidden": 32, "lr": 3e-3, "batch": 128, "examples": 128_000, "chunk": 8},
    "digits": {"hidden": 64, "lr": 3e-3, "batch": 64, "epochs": 60, "chunk": 1},
}


def configs_from_args(args: argparse.Namespace) -> list[RunConfig]:
    sizes = dict(DEFAULTS[args.task])
    if args.paper_scale:
        sizes.update(PAPER_SCALE)
        if args.task == "digits":
            sizes.pop("examples")
            sizes["epochs"] = 30 if args.mnist_dir else 300
    for key in ("hidden", "lr", "batch", "examples", "epochs", "chunk", "schedule"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    sizes.pop("examples" if args.task == "digits" else "epochs", None)
    return [
        RunConfig(task=args.task, mode=mode, seed=seed, beta=beta, theta=args.theta, layers=args.layers,
                  eval_examples=args.eval_examples, bins=args.bins, grad_clip=args.grad_clip, device=args.device,
                  mnist_dir=args.mnist_dir, **sizes)
        for beta in args.beta for mode in args.mode for seed in args.seeds
    ]


def run(args: argparse.Namespace) -> int:
    import torch

    try:
        configs = configs_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = None
    for config in configs:
        try:
            data = data or load_task(config)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        result = run_one(config, progress=not args.no_progress, data=data)
        path = args.out / f"{config.name}{('-' + args.tag) if args.tag else ''}.json"
        path.write_text(json.dumps(result, indent=1))
        ev, at = result["eval"], result["eval"]["at_theta"]
        print(f"{config.name}: first-spike acc {at['accuracy']:.2%} at mean step {at['mean_spike_step']:.2f}/"
              f"{ev['steps']}, never spiked {at['never_spiked']:.1%}, last-step acc {ev['accuracy_last_step']:.2%}, "
              f"step-1 acc {ev['accuracy_step1']:.2%}; trained in {result['train']['train_wall_s']:.1f} s, "
              f"{result['train']['train_frame_fraction']:.0%} of the frames  → {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repro.run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
