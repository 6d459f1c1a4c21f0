"""Properties of the reproduction's data generators and the IDX reader."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from bench.repro import tasks


def test_noise_vs_signal_shape_classes_and_noise_range() -> None:
    batch = tasks.noise_vs_signal(4000, np.random.default_rng(0))
    assert batch.x.shape == (4000, 40, 1) and batch.x.dtype == np.float32
    assert set(np.unique(batch.y)) == {0, 1}
    std = batch.extras["noise_std"]
    assert std.min() >= 0.05 and std.max() <= 0.25
    # the class sets the sign of the mean; the per-example spread matches its drawn noise level
    means = batch.x[:, :, 0].mean(axis=1)
    assert means[batch.y == 1].mean() == pytest.approx(0.05, abs=0.005)
    assert means[batch.y == 0].mean() == pytest.approx(-0.05, abs=0.005)
    spread = batch.x[:, :, 0].std(axis=1)
    assert np.corrcoef(spread, std)[0, 1] > 0.95


def test_noise_vs_signal_is_seeded() -> None:
    a = tasks.noise_vs_signal(10, np.random.default_rng(3))
    b = tasks.noise_vs_signal(10, np.random.default_rng(3))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_first_run_end_marks_the_end_of_the_first_window() -> None:
    bits = np.array(
        [
            [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],  # ones at 1..5 → ends at 5
            [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],  # never
            [1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1],  # zeros at 4..8 → ends at 8
            [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],  # first five zeros end at 4
        ]
    )
    assert tasks.first_run_end(bits).tolist() == [5, -1, 8, 4]


def test_sequence_of_five_labels_agree_with_a_brute_force_search() -> None:
    batch = tasks.sequence_of_five(500, np.random.default_rng(1))
    assert batch.x.shape == (500, 25, 1)
    assert np.array_equal(batch.x[:, :, 0], 2.0 * batch.extras["bits"] - 1)
    for bits, label, ideal in zip(batch.extras["bits"], batch.y, batch.extras["ideal_step"]):
        text = "".join(map(str, bits))
        found = [i + 4 for i in range(21) if text[i : i + 5] in ("00000", "11111")]
        assert label == bool(found)
        assert ideal == (found[0] if found else -1)
    assert 0.4 < batch.y.mean() < 0.7  # both classes well represented


def test_latency_code_fires_each_pixel_once_brightest_first() -> None:
    images = np.array([[16, 8, 0, 1], [0, 0, 16, 16]], dtype=float)
    fire = tasks.latency_code(images, bins=4, max_value=16)
    assert fire.tolist() == [[0, 2, -1, 3], [-1, -1, 0, 0]]
    spikes = tasks.expand_latency(fire, 4)
    assert spikes.shape == (2, 4, 4)
    assert spikes.sum(axis=1).tolist() == [[1, 1, 0, 1], [0, 0, 1, 1]]  # once, or never when black
    assert spikes[0, 0].tolist() == [1, 0, 0, 0]


def test_latency_code_rejects_out_of_range_pixels() -> None:
    with pytest.raises(ValueError, match="pixel values"):
        tasks.latency_code(np.array([[17.0]]), bins=4, max_value=16)


def test_sklearn_digits_split_and_coding() -> None:
    train, test = tasks.sklearn_digits(bins=20, rng=np.random.default_rng(0))
    assert len(train) + len(test) == 1797 and len(test) == 449
    assert train.steps == 20 and train.n_in == 64
    dense = train.inputs(slice(0, 16))
    assert dense.shape == (16, 20, 64) and dense.sum(axis=1).max() == 1.0
    assert set(np.unique(train.y)) == set(range(10))


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    body = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(body)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_and_mnist_folder(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    images = rng.integers(0, 256, size=(6, 28, 28))
    labels = rng.integers(0, 10, size=6)
    for split, n in (("train", 6), ("t10k", 3)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", images[:n], compress)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labels[:n], compress)
    assert np.array_equal(tasks.read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    train, test = tasks.mnist_idx(tmp_path, bins=20)
    assert len(train) == 6 and len(test) == 3 and train.n_in == 784 and train.steps == 20
    assert np.array_equal(train.y, labels)
    assert np.array_equal(train.x, tasks.latency_code(images.reshape(6, -1), 20, 255.0))


def test_read_idx_rejects_garbage_and_truncation(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        tasks.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="promises"):
        tasks.read_idx(short)


def test_mnist_folder_missing_files_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="cannot be downloaded"):
        tasks.mnist_idx(tmp_path, bins=20)


def test_answer_certain_step_for_negatives_is_when_no_run_can_still_complete() -> None:
    #       steps: 0  1  2  3  4  5  6  7  8  9
    bits = np.array([[0, 1, 0, 1, 0, 1, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1, 0, 1, 0, 1]])
    # row 0: at step 6 the run is 1 and 3 bits remain (1 + 3 < 5); at step 5 a fresh run of 5 could still start at 5
    # row 1: positive, certain where its first window ends
    assert tasks.answer_certain_step(bits).tolist() == [6, 4]


def test_digits_step1_holds_the_brightest_pixels_and_bounds_step1_accuracy() -> None:
    from bench.repro.step1_bound import step1_bound

    train, _ = tasks.sklearn_digits(4, np.random.default_rng(0))
    from sklearn.datasets import load_digits

    values = load_digits().data
    fire = tasks.latency_code(values, 4, 16.0)
    assert np.array_equal(fire == 0, values >= 13)  # 4 bins: step 1 carries values 13–16, never a black pixel
    assert np.array_equal(fire == -1, values == 0)
    assert (train.x == 0).any(axis=1).all()  # no digit arrives with an empty first step
    four, twenty = step1_bound(4), step1_bound(20)
    # step 1 alone carries most of a digit with 4 bins, much less with 20: the ceiling for step-1 decisions
    assert 0.8 < four["accuracy"] < 0.95 and 0.6 < twenty["accuracy"] < 0.8
    assert twenty["pixels_at_step1"] < four["pixels_at_step1"] < four["pixels_firing"]
