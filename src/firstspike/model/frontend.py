"""Causal log-mel frontend built only from framewise matrix products.

Why matrices: the same module is exported to a stepwise ONNX graph, where one hop of audio goes in
and one feature frame comes out. A windowed real-DFT basis (Hann window folded in) and a mel
filterbank are plain MatMuls that every runtime executes identically, so the whole-clip forward used
in training and the hop-by-hop step used in serving agree to float precision.

Framing is causal: frame t covers the (window - hop) samples carried over from before plus the t-th
hop of new samples. A fresh stream starts with an overlap of zeros.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

LOG_FLOOR = 1e-6


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_edges(sample_rate: int, n_mels: int, f_min: float = 20.0, f_max: float | None = None) -> np.ndarray:
    """The n_mels + 2 corner frequencies (Hz) of the filters, evenly spaced in mel; band j peaks at edge j + 1."""
    f_max = sample_rate / 2 if f_max is None else f_max
    return _mel_to_hz(np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float = 20.0, f_max: float | None = None) -> np.ndarray:
    """Triangular HTK-mel filters, shape [n_fft // 2 + 1, n_mels]."""
    n_bins = n_fft // 2 + 1
    bin_hz = np.linspace(0.0, sample_rate / 2, n_bins)
    edges = mel_edges(sample_rate, n_mels, f_min, f_max)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_hz[:, None] - lower[None, :]) / (centre - lower)[None, :]
    falling = (upper[None, :] - bin_hz[:, None]) / (upper - centre)[None, :]
    return np.clip(np.minimum(rising, falling), 0.0, None)


def windowed_dft_basis(window: int) -> np.ndarray:
    """Real-DFT basis with a periodic Hann window folded in: [window, 2 * n_bins] (cos | -sin)."""
    n_bins = window // 2 + 1
    n = np.arange(window)[:, None]
    k = np.arange(n_bins)[None, :]
    hann = 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(window) / window)
    angle = 2.0 * math.pi * n * k / window
    return np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * hann[:, None]


class LogMelFrontend(nn.Module):
    """Audio [B, N] → log-mel [B, N // hop, n_mels], or one hop at a time with `step`."""

    def __init__(self, sample_rate: int = 16000, window_ms: float = 25, hop_ms: float = 10, n_mels: int = 40):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.window = int(round(sample_rate * window_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        self.n_mels = int(n_mels)
        if not 0 < self.hop <= self.window:
            raise ValueError(f"need 0 < hop <= window, got hop={self.hop} window={self.window} samples")
        basis = windowed_dft_basis(self.window)
        mel = mel_filterbank(self.sample_rate, self.window, self.n_mels)
        # Stacking the filterbank twice folds "re^2 + im^2" into the mel MatMul.
        self.register_buffer("dft_basis", torch.tensor(basis, dtype=torch.float32), persistent=False)
        self.register_buffer("mel_basis", torch.tensor(np.concatenate([mel, mel], axis=0), dtype=torch.float32), persistent=False)

    @property
    def band_centres_hz(self) -> np.ndarray:
        """Where each mel band peaks: what a frequency warp of the features needs to know."""
        return mel_edges(self.sample_rate, self.n_mels)[1:-1]

    @property
    def overlap_size(self) -> int:
        """Samples carried from one frame to the next (window - hop)."""
        return self.window - self.hop

    def frames_to_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Windowed frames [..., window] → log-mel [..., n_mels]."""
        spectrum = frames @ self.dft_basis
        return torch.log(spectrum.square() @ self.mel_basis + LOG_FLOOR)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 2:
            raise ValueError(f"audio must be [batch, samples], got shape {tuple(audio.shape)}")
        n_frames = audio.shape[1] // self.hop
        audio = audio[:, : n_frames * self.hop]
        padded = torch.cat([audio.new_zeros(audio.shape[0], self.overlap_size), audio], dim=1)
        frames = padded.unfold(1, self.window, self.hop)  # [B, T, window]
        return self.frames_to_features(frames)

    def step(self, hop_audio: torch.Tensor, overlap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop [B, hop] plus the carried overlap [B, window - hop] → (features [B, n_mels], new overlap)."""
        frame = torch.cat([overlap, hop_audio], dim=1)
        return self.frames_to_features(frame), frame[:, self.hop:]

    def initial_overlap(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.overlap_size, device=device)
