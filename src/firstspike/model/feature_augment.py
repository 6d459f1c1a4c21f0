"""Augmentation of cached log-mel features, drawn afresh for every batch of every epoch.

Why on features: the corpus renders each example once, so its speaker and channel perturbations are
fixed for all epochs, and the features are cached. Perturbing the cached log-mels is nearly free
and gives every epoch new speakers and channels:
- `warp_speakers`: vocal-tract-length perturbation (Jaitly & Hinton, 2013). Every sequence's
  frequency axis is scaled by its own α, so formants move while pitch and timing stay put (the
  corpus's resampling moves all three together).
- `tilt_channels`: a random gain and a smooth random EQ curve across the mel bands: a different
  microphone, room or synthesiser's spectral balance.
- `spec_augment`: SpecAugment's time and frequency masks (Park et al., 2019).
The first two work on raw log-mel (natural-log power); SpecAugment works on normalised features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from firstspike.model.frontend import LOG_FLOOR, hz_to_mel

NEPER_PER_DB = math.log(10.0) / 10.0  # natural-log power per decibel
TIME_MASKS = 2  # SpecAugment's time masks per sequence (`firstspike train --no-time-masks`: none)


@dataclass(frozen=True)
class FeatureAugment:
    """What `augment_raw` applies; zero switches a part off, and all three are off by default (measured:
    no gain on held-out voices, docs/benchmarks.md)."""

    warp: float = 0.0  # α uniform in [1 - warp, 1 + warp]
    gain_db: float = 0.0  # whole-sequence gain, uniform in ±gain_db
    eq_db: float = 0.0  # peak size of each of the EQ curve's cosine terms, uniform in ±eq_db

    def augment_raw(self, feats: torch.Tensor, mel_centres_hz: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """Raw log-mel [B, T, F] → the same sequences as other speakers through other channels."""
        if self.warp > 0:
            alpha = 1.0 + self.warp * (2.0 * torch.rand(feats.shape[0], generator=gen) - 1.0)
            feats = warp_speakers(feats, alpha, mel_centres_hz)
        if self.gain_db > 0 or self.eq_db > 0:
            feats = tilt_channels(feats, gen, self.gain_db, self.eq_db)
        return feats


def warp_speakers(feats: torch.Tensor, alpha: torch.Tensor, centres_hz: np.ndarray) -> torch.Tensor:
    """Scale each sequence's frequency axis by its α: band j takes the energy found at centre_j / α.

    The source frequency falls between two bands, whose log energies are interpolated linearly: a fair
    approximation where the spectrum changes little from one band to the next. Sources past either
    end take the edge band.
    """
    bands = feats.shape[-1]
    centres_mel = hz_to_mel(centres_hz)
    source_mel = hz_to_mel(centres_hz[None, :] / alpha.double().numpy()[:, None])  # [B, F]
    # The centres are evenly spaced in mel, so a mel value maps linearly to a fractional band index.
    position = torch.from_numpy((source_mel - centres_mel[0]) / (centres_mel[1] - centres_mel[0])).float()
    position = position.clamp(0.0, bands - 1.0)
    below = position.floor().long().clamp(max=bands - 2)
    weight = (position - below).unsqueeze(1)  # [B, 1, F]
    index = below.unsqueeze(1).expand(-1, feats.shape[1], -1)  # [B, T, F]
    low = feats.gather(2, index)
    high = feats.gather(2, index + 1)
    return low + weight * (high - low)


def tilt_channels(feats: torch.Tensor, gen: torch.Generator, gain_db: float, eq_db: float) -> torch.Tensor:
    """Add a per-sequence gain and a smooth EQ curve (two cosines across the bands), in dB.

    Values at the log floor stay there: digital silence has no level to change.
    """
    batch, _, bands = feats.shape
    x = torch.linspace(0.0, 1.0, bands)
    amplitude = (2.0 * torch.rand(batch, 3, generator=gen) - 1.0) * torch.tensor([gain_db, eq_db, eq_db])
    curve_db = amplitude[:, :1] + amplitude[:, 1:2] * torch.cos(math.pi * x) + amplitude[:, 2:] * torch.cos(2 * math.pi * x)
    floor = math.log(LOG_FLOOR)
    shifted = feats + (curve_db * NEPER_PER_DB).unsqueeze(1)
    return torch.where(feats <= floor + 1e-3, feats, shifted.clamp(min=floor))


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator, time_masks: int = TIME_MASKS,
                 max_time: int = 10, freq_masks: int = 2, max_freq: int = 6) -> torch.Tensor:
    """SpecAugment on normalised features: zero (= the mean) random time and frequency bands."""
    feats = feats.clone()
    batch, steps, bands = feats.shape
    for b in range(batch):
        for _ in range(freq_masks):
            width = int(torch.randint(0, max_freq + 1, (1,), generator=gen))
            start = int(torch.randint(0, bands - width + 1, (1,), generator=gen))
            feats[b, :, start: start + width] = 0.0
        for _ in range(time_masks):
            width = min(int(torch.randint(0, max_time + 1, (1,), generator=gen)), int(lengths[b]) // 5)
            start = int(torch.randint(0, max(1, int(lengths[b]) - width + 1), (1,), generator=gen))
            feats[b, start: start + width] = 0.0
    return feats
