"""Data generators for the paper's toy problems and temporally-coded digits.

Each generator returns a `TaskBatch` of float32 arrays shaped [N, T, F] plus integer labels, so the
training loop treats all tasks alike. Everything is numpy and seeded by the caller's Generator, which keeps
the generators cheap to test and the runs reproducible.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NOISE_STEPS = 40
NOISE_SIGNAL = 0.05
NOISE_STD_RANGE = (0.05, 0.25)
SEQ5_LENGTH = 25
SEQ5_RUN = 5


@dataclass
class TaskBatch:
    """Inputs, labels [N] and per-example extras (noise level, ideal step, …).

    `x` is either dense float32 [N, T, F], or, when `latency_bins` is set, the fire bin of every pixel
    [N, P] (-1: never fires), expanded to [B, bins, P] only per batch: full MNIST as dense spikes would
    take gigabytes.
    """

    x: np.ndarray
    y: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    latency_bins: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def steps(self) -> int:
        return self.latency_bins if self.latency_bins is not None else self.x.shape[1]

    @property
    def n_in(self) -> int:
        return self.x.shape[-1]

    def inputs(self, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Dense float32 inputs [B, T, F] for the selected examples."""
        if self.latency_bins is None:
            return self.x[index]
        return expand_latency(self.x[index], self.latency_bins)

    def subset(self, index: np.ndarray | slice) -> "TaskBatch":
        return TaskBatch(self.x[index], self.y[index], {k: v[index] for k, v in self.extras.items()}, self.latency_bins)


# --- noise vs signal ---------------------------------------------------------------------------------


def noise_vs_signal(n: int, rng: np.random.Generator, steps: int = NOISE_STEPS) -> TaskBatch:
    """A constant ±0.05 hidden in Gaussian noise whose std is drawn per example from U[0.05, 0.25].

    Label 1 means +0.05. The noisier the example, the more steps a reader needs to average before the sign
    is clear, which is what makes a learned *decision time* worthwhile.
    """
    if n <= 0 or steps <= 0:
        raise ValueError(f"noise_vs_signal needs n > 0 and steps > 0, got n={n}, steps={steps}")
    y = rng.integers(0, 2, size=n)
    std = rng.uniform(*NOISE_STD_RANGE, size=n)
    mean = np.where(y == 1, NOISE_SIGNAL, -NOISE_SIGNAL)
    x = mean[:, None] + std[:, None] * rng.standard_normal((n, steps))
    return TaskBatch(x[:, :, None].astype(np.float32), y.astype(np.int64), {"noise_std": std.astype(np.float32)})


# --- sequence of five --------------------------------------------------------------------------------


def _run_lengths(bits: np.ndarray) -> np.ndarray:
    """Length of the run of equal bits ending at each step, [N, T]."""
    n, length = bits.shape
    same = np.ones((n, length), dtype=np.int64)
    for t in range(1, length):
        same[:, t] = np.where(bits[:, t] == bits[:, t - 1], same[:, t - 1] + 1, 1)
    return same


def first_run_end(bits: np.ndarray, run: int = SEQ5_RUN) -> np.ndarray:
    """0-based step at which the first window of `run` equal bits ends, or -1 where none exists.

    This is the ideal spike step: before it the answer is unknowable, at it the answer is certain.
    """
    hit = _run_lengths(np.asarray(bits)) >= run
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def answer_certain_step(bits: np.ndarray, run: int = SEQ5_RUN) -> np.ndarray:
    """0-based first step at which the label is already certain, whichever it is.

    Positives: the end of the first window (`first_run_end`). Negatives (*ours*, the paper names only the
    positive case): the first step where even the current run plus every remaining bit cannot reach `run`.
    """
    bits = np.asarray(bits)
    length = bits.shape[1]
    same = _run_lengths(bits)
    remaining = length - 1 - np.arange(length)[None, :]
    hopeless = (same + remaining) < run
    first_hit = first_run_end(bits, run)
    return np.where(first_hit >= 0, first_hit, hopeless.argmax(axis=1))


def sequence_of_five(n: int, rng: np.random.Generator, length: int = SEQ5_LENGTH) -> TaskBatch:
    """Random bits; label 1 iff somewhere 5 equal consecutive bits occur.

    The input at each step is the bit as ±1 (*ours*): with 0/1 inputs a small LSTM sat at the majority class
    for thousands of batches, with ±1 it learns at once. `extras["bits"]` keeps the raw bits.
    """
    if n <= 0 or length < SEQ5_RUN:
        raise ValueError(f"sequence_of_five needs n > 0 and length >= {SEQ5_RUN}, got n={n}, length={length}")
    bits = rng.integers(0, 2, size=(n, length))
    ideal = first_run_end(bits)
    y = (ideal >= 0).astype(np.int64)
    extras = {"ideal_step": ideal.astype(np.int64), "certain_step": answer_certain_step(bits).astype(np.int64),
              "bits": bits.astype(np.int8)}
    return TaskBatch((2 * bits - 1)[:, :, None].astype(np.float32), y, extras)


# --- temporally-coded digits -------------------------------------------------------------------------


def latency_code(images: np.ndarray, bins: int, max_value: float) -> np.ndarray:
    """Time-to-first-spike coding: each non-zero pixel fires once, brighter pixels in earlier bins.

    images [N, P] with values in [0, max_value] → fire bin per pixel [N, P] (int8, -1: never). A pixel of
    value v fires in bin floor((1 - v/max) * bins), clipped to the last bin; the brightest pixels fire at
    step 0 and black pixels never fire.
    """
    if bins <= 0:
        raise ValueError(f"latency_code needs bins > 0, got {bins}")
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 2:
        raise ValueError(f"latency_code expects images shaped [N, pixels], got {images.shape}")
    if images.min(initial=0) < 0 or images.max(initial=0) > max_value:
        raise ValueError(f"pixel values must lie in [0, {max_value}]")
    if bins > 127:
        raise ValueError(f"latency_code supports at most 127 bins, got {bins}")
    fire_bin = np.minimum(np.floor((1.0 - images / max_value) * bins), bins - 1)
    return np.where(images > 0, fire_bin, -1).astype(np.int8)


def expand_latency(fire_bin: np.ndarray, bins: int) -> np.ndarray:
    """Fire bins [N, P] → spike trains [N, bins, P] (float32 0/1): input at step t = pixels firing at t."""
    steps = np.arange(bins, dtype=np.int8)[None, :, None]
    return (fire_bin[:, None, :] == steps).astype(np.float32)


def sklearn_digits(bins: int, rng: np.random.Generator, test_fraction: float = 0.25) -> tuple[TaskBatch, TaskBatch]:
    """scikit-learn's bundled 8×8 digits (1797 images, values 0–16), latency-coded, split train/test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    fire = latency_code(digits.data, bins, max_value=16.0)
    order = rng.permutation(len(fire))
    n_test = int(round(len(fire) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    y = digits.target.astype(np.int64)
    return TaskBatch(fire[train], y[train], latency_bins=bins), TaskBatch(fire[test], y[test], latency_bins=bins)


# --- MNIST from local IDX files ----------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, into an array of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX body holds {len(data) - header} bytes, header promises {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem} or {stem}.gz (MNIST cannot be downloaded here; copy the IDX files in)")


def mnist_idx(folder: str | Path, bins: int, limit_train: int | None = None) -> tuple[TaskBatch, TaskBatch]:
    """Latency-coded MNIST from the four standard IDX files in `folder` (gz or not)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"--mnist-dir {folder} is not a folder")
    parts = []
    for split in ("train", "t10k"):
        images = read_idx(_find_idx(folder, f"{split}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(folder, f"{split}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match")
        if split == "train" and limit_train:
            images, labels = images[:limit_train], labels[:limit_train]
        flat = images.reshape(len(images), -1)
        parts.append(TaskBatch(latency_code(flat, bins, max_value=255.0), labels.astype(np.int64), latency_bins=bins))
    return parts[0], parts[1]
