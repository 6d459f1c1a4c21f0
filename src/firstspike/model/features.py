"""Log-mel features for a whole corpus split, computed once and cached on disk.

Why cache: both training modes then pay the same (nothing) for the frontend, so epoch times measure
the recurrence, which is what rank coding saves. The cache is keyed by the frontend settings and by
every file's path, size and modification time, so a changed corpus is never read stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from firstspike.model.frontend import LogMelFrontend
from firstspike.model.labels import SILENCE, UNKNOWN

CACHE_VERSION = 1


@dataclass
class FeatureSet:
    """One split's features as a single [frames, n_mels] array plus per-sequence metadata."""

    feats: np.ndarray  # float32 [sum T, F], un-normalised log-mel
    offsets: np.ndarray  # int64 [n + 1]: sequence i is feats[offsets[i]:offsets[i + 1]]
    rows: list  # corpus rows, same order
    targets: np.ndarray  # int64 [n]: label index
    onset_frames: np.ndarray  # int64 [n]: first frame of the keyword (0 if unknown or a filler)
    offset_frames: np.ndarray  # int64 [n]: frame where the keyword ends (T if unknown)
    early_targets: np.ndarray  # int64 [n]: target for a spike before the onset (a filler)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        return self.feats[self.offsets[i]: self.offsets[i + 1]]

    def batch(self, indices):
        """Zero-padded raw features [B, T_max, F] and lengths [B] (`KeywordSpotter.prepare` normalises them)."""
        indices = list(indices)
        lengths = self.lengths[indices]
        out = np.zeros((len(indices), int(lengths.max()), self.feats.shape[1]), dtype=np.float32)
        for row, i in enumerate(indices):
            out[row, : lengths[row]] = self.sequence(i)
        return torch.from_numpy(out), torch.from_numpy(lengths).long()

    def normalisation(self, transform=None, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-band mean and std over every frame of the split, of `transform`'s output when given (PCEN,
        which needs each sequence from its start, so it runs over padded batches, and may return more
        bands than it takes)."""
        if transform is None:
            feats = torch.from_numpy(self.feats).double()
            return feats.mean(0).float(), feats.std(0).float()
        total = squares = torch.zeros((), dtype=torch.float64)  # broadcast to the output's bands
        frames = 0
        with torch.no_grad():
            for start in range(0, len(self), batch_size):
                raw, lengths = self.batch(range(start, min(start + batch_size, len(self))))
                out = transform(raw)
                valid = out[torch.arange(out.shape[1])[None, :] < lengths[:, None]].double()
                total = total + valid.sum(0)
                squares = squares + valid.square().sum(0)
                frames += valid.shape[0]
        mean = total / frames
        std = ((squares - frames * mean.square()) / max(frames - 1, 1)).clamp_min(0).sqrt()
        return mean.float(), std.float()


def normalise(feats: torch.Tensor, lengths: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-band standardisation of a padded batch [B, T, F]; the padding stays exactly zero."""
    feats = (feats - mean) / std
    feats[torch.arange(feats.shape[1], device=feats.device)[None, :] >= lengths.to(feats.device)[:, None]] = 0.0
    return feats


def ms_to_frame(ms: float | None, sample_rate: int, hop: int) -> int | None:
    """The frame during which audio time `ms` arrives (frame t ends at sample (t + 1) * hop)."""
    if ms is None or (isinstance(ms, float) and np.isnan(ms)):
        return None
    return int(float(ms) * sample_rate / 1000.0) // hop


def _cache_key(rows, frontend: LogMelFrontend) -> str:
    h = hashlib.sha1()
    h.update(json.dumps({"v": CACHE_VERSION, "sr": frontend.sample_rate, "win": frontend.window,
                         "hop": frontend.hop, "mels": frontend.n_mels}).encode())
    for row in rows:
        st = os.stat(row.path)
        h.update(f"{row.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def default_cache_dir(corpus_dir: str | os.PathLike) -> Path:
    """`CORPUS/.firstspike-cache` when writable, else the user cache (read-only corpora)."""
    corpus_dir = Path(corpus_dir)
    if os.access(corpus_dir, os.W_OK):
        return corpus_dir / ".firstspike-cache"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "firstspike" / "features"


def _extract(rows, frontend: LogMelFrontend, load_audio, desc: str, show_progress: bool):
    """Log-mels of every row; `load_audio(index, row)` gives the row's samples."""
    chunks, lengths = [], []
    with torch.no_grad():
        for index, row in enumerate(tqdm(rows, desc=desc, unit="clip", disable=not show_progress, leave=False)):
            audio = np.asarray(load_audio(index, row), dtype=np.float32)
            if audio.ndim != 1 or audio.size < frontend.hop:
                raise ValueError(f"{row.path}: audio must be mono with at least {frontend.hop} samples")
            feats = frontend(torch.from_numpy(audio)[None])[0].numpy()
            chunks.append(feats)
            lengths.append(len(feats))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.concatenate(chunks).astype(np.float32), offsets


def features_for_rows(rows, labels: list[str], firing: set[str], frontend: LogMelFrontend, load_audio, desc: str,
                      show_progress: bool = True) -> FeatureSet:
    """Features of `rows` with audio from `load_audio(index, row)` (e.g. altered on the way), uncached."""
    feats, offsets = _extract(rows, frontend, load_audio, desc, show_progress)
    return _with_targets(feats, offsets, rows, labels, firing, frontend)


def load_features(corpus, split: str, frontend: LogMelFrontend, cache_dir: str | os.PathLike,
                  load_wav, max_rows: int | None = None, seed: int = 0,
                  show_progress: bool = True, keep=None) -> FeatureSet:
    """Features for `corpus.rows(split)` (only those `keep(row)` accepts when given; optionally a seeded
    random subset), from cache when valid."""
    rows = [row for row in corpus.rows(split) if keep is None or keep(row)]
    if not rows:
        raise ValueError(f"the corpus has no rows in split {split!r}")
    if max_rows is not None and max_rows < len(rows):
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=max_rows, replace=False))
        rows = [rows[i] for i in pick]
    key = _cache_key(rows, frontend)
    path = Path(cache_dir) / f"{split}-{key}.npz"
    if path.is_file():
        with np.load(path) as cached:
            feats, offsets = cached["feats"], cached["offsets"]
    else:
        feats, offsets = _extract(rows, frontend, lambda _, row: load_wav(row.path), f"log-mel {split}", show_progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, feats=feats, offsets=offsets)
        os.replace(tmp, path)
    return _with_targets(feats, offsets, rows, list(corpus.labels), set(corpus.firing_labels), frontend)


def concat_feature_sets(sets: list[FeatureSet]) -> FeatureSet:
    """One set from several (a training split with more corpora's training splits), in the given order."""
    if len(sets) == 1:
        return sets[0]
    offsets, start = [np.zeros(1, dtype=np.int64)], 0
    for fs in sets:
        offsets.append(fs.offsets[1:] + start)
        start += int(fs.offsets[-1])
    return FeatureSet(np.concatenate([fs.feats for fs in sets]), np.concatenate(offsets),
                      [row for fs in sets for row in fs.rows], np.concatenate([fs.targets for fs in sets]),
                      np.concatenate([fs.onset_frames for fs in sets]),
                      np.concatenate([fs.offset_frames for fs in sets]),
                      np.concatenate([fs.early_targets for fs in sets]))


def _with_targets(feats, offsets, rows, labels, firing, frontend) -> FeatureSet:
    lengths = np.diff(offsets)
    targets, onsets, ends, early = [], [], [], []
    for row, length in zip(rows, lengths):
        if row.label not in labels:
            raise ValueError(f"{row.path}: label {row.label!r} is not one of the task labels {labels}")
        targets.append(labels.index(row.label))
        onset = ms_to_frame(row.onset_ms, frontend.sample_rate, frontend.hop)
        end = ms_to_frame(row.offset_ms, frontend.sample_rate, frontend.hop)
        is_firing = row.label in firing
        onsets.append(min(onset, length - 1) if (is_firing and onset is not None) else 0)
        ends.append(min(end, length) if end is not None else length)
        early.append(labels.index(UNKNOWN if row.kind == "stream" else SILENCE))
    as_long = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    return FeatureSet(feats, offsets, rows, as_long(targets), as_long(onsets), as_long(ends), as_long(early))
