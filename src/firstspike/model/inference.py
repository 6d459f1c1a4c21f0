"""Whole-sequence inference shared by validation and evaluation.

Runs the full forward once per sequence and keeps the per-frame probabilities, so any number of
thresholds can be decided afterwards without running the network again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from firstspike.model.classifier import KeywordSpotter
from firstspike.model.features import FeatureSet


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices in batches of similar length (sorted), so padding costs little."""
    order = np.argsort(lengths, kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def sequence_probabilities(model: KeywordSpotter, data: FeatureSet, batch_size: int = 64,
                           device: torch.device | str = "cpu") -> list[np.ndarray]:
    """Per-frame class scores [T_i, K] for every sequence of `data`, in data order (`model` on `device`)."""
    model.eval()
    out: list[np.ndarray | None] = [None] * len(data)
    for idx in length_sorted_batches(data.lengths, batch_size):
        feats, lengths = data.batch(idx)
        logits, _ = model.classifier(model.prepare(feats.to(device), lengths))
        probs = model.probabilities(logits).cpu().numpy()
        for row, i in enumerate(idx):
            out[i] = probs[row, : lengths[row]]
    return out  # type: ignore[return-value]


@dataclass
class Decisions:
    t_star: np.ndarray  # [n] frame index of the decision
    spiked: np.ndarray  # [n] bool: a firing class crossed θ
    predicted: np.ndarray  # [n] class index decided at t*
    lengths: np.ndarray  # [n]


def decide(probs: list[np.ndarray], firing_mask: np.ndarray, theta: float) -> Decisions:
    """First-spike decisions at threshold θ for every sequence (see rank_coding.first_spike).

    A spike's answer is the firing class with the highest score at t*; a sequence that never spikes is
    answered by its overall arg-max at its last frame (which may be a filler).
    """
    firing_mask = np.asarray(firing_mask, dtype=bool)
    firing_idx = np.flatnonzero(firing_mask)
    n = len(probs)
    t_star = np.empty(n, dtype=np.int64)
    spiked = np.empty(n, dtype=bool)
    predicted = np.empty(n, dtype=np.int64)
    lengths = np.array([len(p) for p in probs], dtype=np.int64)
    for i, p in enumerate(probs):
        crossed = np.flatnonzero(p[:, firing_mask].max(axis=1) >= theta)
        if crossed.size:
            t = int(crossed[0])
            t_star[i], spiked[i] = t, True
            predicted[i] = firing_idx[int(np.argmax(p[t, firing_mask]))]
        else:
            t = len(p) - 1
            t_star[i], spiked[i] = t, False
            predicted[i] = int(np.argmax(p[t]))
    return Decisions(t_star, spiked, predicted, lengths)
