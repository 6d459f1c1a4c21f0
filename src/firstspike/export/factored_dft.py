"""Mel energy of a Hann-windowed frame through a two-stage (Cooley–Tukey) DFT: the `fused` graph's frontend.

Why: at the batches a loaded server runs (hundreds of streams a tick), the frontend's DFT was half of
a step's arithmetic. Split the window as N = P·Q, with sample n = Q·n1 + n2 and bin k = k1 + P·k2:

    X[k] = Σ_n2 e^(-2πi·n2·k/N) · Y[n2, k1],   Y[n2, k1] = Σ_n1 x[Q·n1 + n2] · e^(-2πi·n1·k1/P)

Stage 1 is a real P-point DFT of every column n2, one MatMul for all of them. Its outputs for k1 and
P − k1 are complex conjugates (x is real), so the bins fall into P//2 + 1 *groups*: group g holds
every kept bin with k1 = g or P − g, and its cos and sin parts are one real [2Q → 2·bins] linear map of
the group's Re and Im of Y (twiddles folded in): stage 2 is one batched MatMul over the groups. For
N = 400 = 20 × 20 that is 44 k multiply-adds a frame with the mel filters instead of the even/odd
split's 96 k, and 0.67–0.74× its time at batch 64–1024 (docs/benchmarks.md, export section); summing
each bin's cos² and sin² before the filters (below) brings it to 35 k.

The batch is kept as the *last* axis throughout (the frame is transposed once on the way in), so the
stages need no transposes of their own: the first version, with the batch first, spent 2 µs a row
regrouping. Each group's cos parts come before its sin parts, so a bin's power is one sum over a
middle axis of two, and the mel filters of all groups are one Gemm over the powers (not over both
squared parts: half the rows, 0.70–0.79× the time at batch 64–256, bench/mel_power_layouts.py). It
reads them transposed and turns the batch back into rows, with the log floor as its bias. Only bins
some mel filter reads are computed (as in `step_graph.EvenOddDft`); groups are padded with zero
columns to one width.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from firstspike.model.frontend import LOG_FLOOR

SMALLEST_FACTOR = 4  # below this a stage saves too little to pay for its MatMul


def factor_window(window: int) -> tuple[int, int] | None:
    """(P, Q) with P·Q = window and P the divisor nearest √window, or None when the window has no
    factor pair of at least SMALLEST_FACTOR each (then the caller keeps the even/odd DFT)."""
    pairs = [(p, window // p) for p in range(SMALLEST_FACTOR, window // SMALLEST_FACTOR + 1) if window % p == 0]
    if not pairs:
        return None
    return min(pairs, key=lambda pair: (abs(pair[0] - math.sqrt(window)), pair[0]))


class FactoredDft(nn.Module):
    """frame [B, window] → mel energy + log floor [B, n_mels], from `frontend`'s window and filters."""

    def __init__(self, frontend, factors: tuple[int, int]):
        super().__init__()
        window = frontend.window
        p, q = factors
        if p * q != window:
            raise ValueError(f"factors {p} x {q} do not make the {window}-sample window")
        self.p, self.q, self.groups = p, q, p // 2 + 1
        mel = frontend.mel_basis[: window // 2 + 1].double()  # the frontend stacks it twice (re, im)
        used = torch.nonzero(mel.abs().sum(dim=1) > 0).flatten().tolist()
        members = [[k for k in used if k % p in (g, (p - g) % p)] for g in range(self.groups)]
        width = max(len(bins) for bins in members)

        # Stage 1, rows (group, cos | sin): Re Y = Σ x cos, Im Y = -Σ x sin.
        n1 = torch.arange(p, dtype=torch.float64)[None, :]
        g = torch.arange(self.groups, dtype=torch.float64)[:, None]
        angle = 2.0 * math.pi * g * n1 / p
        first = torch.stack([torch.cos(angle), -torch.sin(angle)], dim=1).reshape(2 * self.groups, p)

        # Stage 2, per group: [cos of each bin | sin of each bin] from [Re Y over n2 | Im Y over n2].
        n2 = torch.arange(q, dtype=torch.float64)
        second = torch.zeros(self.groups, 2 * width, 2 * q, dtype=torch.float64)
        mel_rows = torch.zeros(self.groups, width, mel.shape[1], dtype=torch.float64)
        for group, bins in enumerate(members):
            for j, k in enumerate(bins):
                sign = 1.0 if k % p == group else -1.0  # k1 = P - g reads the conjugate of Y[:, g]
                turn = -2.0 * math.pi * n2 * k / window
                cos, sin = torch.cos(turn), torch.sin(turn)
                # X = Σ (a + i·sign·b)(cos + i·sin) with a = Re Y, b = Im Y
                second[group, j, :q], second[group, j, q:] = cos, -sign * sin
                second[group, width + j, :q], second[group, width + j, q:] = sin, sign * cos
                mel_rows[group, j] = mel[k]
        hann = 0.5 - 0.5 * torch.cos(2.0 * math.pi * torch.arange(window, dtype=torch.float64) / window)
        self.register_buffer("hann", hann.float()[:, None])
        self.register_buffer("first_basis", first.float())
        self.register_buffer("second_basis", second.float())
        self.register_buffer("mel_basis", mel_rows.reshape(-1, mel.shape[1]).float())
        self.register_buffer("log_floor", torch.full((mel.shape[1],), LOG_FLOOR))

    def energy(self, frame: torch.Tensor) -> torch.Tensor:
        """[B, window] → mel energy + log floor [B, n_mels]."""
        columns = (frame.t() * self.hann).reshape(self.p, -1)                                    # [P, Q·B]
        partial = (self.first_basis @ columns).reshape(self.groups, 2 * self.q, -1)              # [G, 2Q, B]
        spectrum = torch.matmul(self.second_basis, partial)                                      # [G, 2W, B]
        power = (spectrum * spectrum).reshape(self.groups, 2, -1).sum(dim=1)                     # [G, W·B]
        return torch.addmm(self.log_floor, power.reshape(self.mel_basis.shape[0], -1).t(), self.mel_basis)
