"""Per-channel energy normalisation (PCEN; Wang et al., 2017): an automatic gain control per mel band.

Why: each band's energy is divided by a running average of itself before it is compressed, so a
stream's level, spectral tilt and steady background fall away and onsets stand out. On the default
corpus it made rank-coded models more accurate at the same false-fire rate and earlier to decide, and
cost the unseen flite and festival voices accuracy (docs/benchmarks.md, *PCEN*). It is a model option
(`firstspike train --pcen`), off by default.

    M_t = running mean of E up to t (time constant 1 / s frames), bias-corrected
    PCEN_t = (E_t / M_t^α + δ)^r − δ^r

E is the mel energy exp(log-mel), floor included, so M is never zero. The mean is bias-corrected as
Adam corrects its moments, so a fresh stream, whose state is all zeros, starts from its first frame's
energy rather than from a startup transient. The state is two running sums, m_t = a m_{t-1} + E_t and
q_t = a q_{t-1} + 1 with a = 1 - s, and M_t = m_t / q_t: both stay bounded (q tends to 1 / s), and
the step model carries them as `frontend.pcen.m` [n_mels] and `frontend.pcen.q` [1].
"""

from __future__ import annotations

import torch
from torch import nn

SMOOTHING = 0.025  # s: a time constant of 40 frames (0.4 s at a 10 ms hop)
ALPHA = 0.98  # how much of the gain is normalised away
DELTA = 2.0
ROOT = 0.5  # the compression (a square root, one Sqrt op in ONNX)
CHUNK = 32  # frames per matrix product in the whole-sequence forward


class Pcen(nn.Module):
    """Raw log-mel → PCEN features, over whole sequences (`forward`) or one frame at a time (`step`)."""

    decay = 1.0 - SMOOTHING
    alpha, delta, root = ALPHA, DELTA, ROOT

    def __init__(self, n_mels: int):
        super().__init__()
        self.n_mels = int(n_mels)
        steps = torch.arange(CHUNK, dtype=torch.float64)
        lag = steps[:, None] - steps[None, :]
        # Within a chunk, m_j = a^(j+1) m_before + sum_{i <= j} a^(j-i) E_i: one matrix product.
        within = torch.where(lag >= 0, self.decay ** lag.clamp_min(0), torch.zeros(()))
        self.register_buffer("within", within.float(), persistent=False)
        self.register_buffer("carried", (self.decay ** (steps + 1)).float(), persistent=False)

    @property
    def state_size(self) -> int:
        return self.n_mels + 1

    @property
    def offset(self) -> float:
        """δ^r, the constant PCEN subtracts: the step graph folds it into the first layer's bias."""
        return self.delta ** self.root

    def initial_state(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.state_size, device=device)

    def compress(self, energy: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return (energy / mean.pow(self.alpha) + self.delta).pow(self.root) - self.offset

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """[B, T, F] from a zero state; frame t depends only on frames up to t, so padding after a
        sequence's end changes none of its frames."""
        energy = torch.exp(logmel)
        batch, frames, bands = energy.shape
        m = energy.new_zeros(batch, bands)
        q = energy.new_zeros(batch, 1)
        out = []
        for start in range(0, frames, CHUNK):
            chunk = energy[:, start: start + CHUNK]
            n = chunk.shape[1]
            within, carried = self.within[:n, :n], self.carried[:n]
            m_chunk = torch.einsum("ji,bif->bjf", within, chunk) + carried[None, :, None] * m[:, None, :]
            q_chunk = within.sum(dim=1)[None, :] + carried[None, :] * q  # [B, n]
            m, q = m_chunk[:, -1], q_chunk[:, -1:]
            out.append(self.compress(chunk, m_chunk / q_chunk[:, :, None]))
        return torch.cat(out, dim=1) if out else logmel.clone()

    def step(self, logmel: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame [B, F] and the state [B, F + 1] → (PCEN [B, F], new state)."""
        energy = torch.exp(logmel)
        m = self.decay * state[:, : self.n_mels] + energy
        q = self.decay * state[:, self.n_mels:] + 1.0
        return self.compress(energy, m / q), torch.cat([m, q], dim=1)
