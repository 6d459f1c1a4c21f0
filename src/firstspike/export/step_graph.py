"""The step models that are traced to ONNX: one call advances every stream by `hops_per_call` hops.

Both variants take `(audio [B, hop * hops_per_call], state [B, S])` and return `(probs [B, K],
state_out [B, S])`, with the same packed state layout (`state_layout`), so a runtime cannot tell
them apart except by speed:

- `FusedStep` ("fused"): hand-written gates. The feature normalisation is folded into the first
  layer's input weights, input and recurrent weights are one matrix (one Gemm per layer), one Sigmoid
  covers all four gates (onnxruntime fuses it into the Gemm), and the windowed DFT runs in two stages
  (`factored_dft.FactoredDft`, 400 = 20 × 20 samples): under half the multiply-adds of the even/odd
  split (`EvenOddDft`), which stays for the integer frontend and windows that do not factor.
- `LstmOpStep` ("lstm-op"): `KeywordSpotter.step` as written, with the flat state unpacked and
  packed around it; the TorchScript exporter maps nn.LSTM to the ONNX LSTM op.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from firstspike.contract import StateSlot
from firstspike.export import GRAPH_VARIANTS
from firstspike.export.factored_dft import FactoredDft, factor_window
from firstspike.model.classifier import KeywordSpotter
from firstspike.model.frontend import LOG_FLOOR

VARIANTS = GRAPH_VARIANTS


def state_layout(model: KeywordSpotter) -> tuple[StateSlot, ...]:
    """Frontend overlap first, then PCEN's running sums (if the model has PCEN), then each LSTM layer's h and c."""
    sizes = [("frontend.overlap", model.frontend.overlap_size)]
    if model.pcen is not None:
        sizes += [("frontend.pcen.m", model.pcen.n_mels), ("frontend.pcen.q", 1)]
    for layer in range(model.classifier.num_layers):
        sizes += [(f"lstm.{layer}.h", model.classifier.hidden_size), (f"lstm.{layer}.c", model.classifier.hidden_size)]
    slots, offset = [], 0
    for name, size in sizes:
        slots.append(StateSlot(name, offset, size))
        offset += size
    return tuple(slots)


def _check_hops(hops_per_call: int) -> int:
    if int(hops_per_call) < 1:
        raise ValueError(f"hops_per_call must be at least 1, got {hops_per_call}")
    return int(hops_per_call)


def pcen_offsets(model: KeywordSpotter) -> torch.Tensor | float:
    """The δ^r that the graphs leave out of each PCEN feature, for the first layer's bias to take
    (none for the log-mels kept beside them)."""
    if model.pcen is None:
        return 0.0
    n_mels = model.pcen.n_mels
    offsets = torch.full((n_mels,), model.pcen.offset)
    return torch.cat([torch.zeros(n_mels), offsets]) if model.config.keep_logmel else offsets


class LstmOpStep(nn.Module):
    """`KeywordSpotter.step` behind the flat-state contract (nn.LSTM → ONNX LSTM op)."""

    def __init__(self, model: KeywordSpotter, hops_per_call: int = 1):
        super().__init__()
        self.model = model
        self.hops_per_call = _check_hops(hops_per_call)
        self.hop = model.hop
        hidden = model.classifier.hidden_size
        self.sizes = [model.frontend_state_size] + [hidden] * (2 * model.classifier.num_layers)

    def forward(self, audio: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = torch.split(state, self.sizes, dim=1)
        front = parts[0]
        h = torch.stack(parts[1::2], dim=0)
        c = torch.stack(parts[2::2], dim=0)
        probs = None
        for k in range(self.hops_per_call):
            probs, (front, h, c) = self.model.step(audio[:, k * self.hop: (k + 1) * self.hop], (front, h, c))
        packed = [front]
        for layer in range(h.shape[0]):
            packed += [h[layer], c[layer]]
        return probs, torch.cat(packed, dim=1)


class FusedStep(nn.Module):
    """Hand-unrolled step with normalisation folded into the weights (see the module docstring)."""

    def __init__(self, model: KeywordSpotter, hops_per_call: int = 1, factored_dft: bool = True):
        super().__init__()
        self.hops_per_call = _check_hops(hops_per_call)
        frontend, lstm, head = model.frontend, model.classifier.lstm, model.classifier.head
        self.hop = frontend.hop
        self.hidden = lstm.hidden_size
        self.layers = lstm.num_layers
        self.sizes = [slot.size for slot in state_layout(model)]
        self.pcen = model.pcen
        self.keep_logmel = model.config.keep_logmel
        self.front_slots = 1 if model.pcen is None else 3  # overlap, then PCEN's m and q
        self.head_kind = model.config.head
        with torch.no_grad():
            self.dft = frontend_dft(frontend, factored_dft)
            hidden = self.hidden
            # PyTorch gate order (i, f, g, o) → (i, f, o, g), with the cell input's rows doubled:
            # tanh(z) = 2σ(2z) - 1 lets one Sigmoid cover all four gates (see `_lstm_cell`).
            order = torch.cat([torch.arange(0, 2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                               torch.arange(2 * hidden, 3 * hidden)])
            for layer in range(self.layers):
                w_ih = getattr(lstm, f"weight_ih_l{layer}")
                w_hh = getattr(lstm, f"weight_hh_l{layer}")
                bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
                if layer == 0:  # W (x - m) / s + b = (W / s) x + (b - W (m / s)); PCEN's - δ^r joins m
                    shift = model.feat_mean + pcen_offsets(model)
                    bias = bias - w_ih @ (shift / model.feat_std)
                    w_ih = w_ih / model.feat_std[None, :]
                scale = torch.ones(4 * hidden)
                scale[3 * hidden:] = 2.0
                weight = torch.cat([w_ih, w_hh], dim=1)[order] * scale[:, None]  # [4H, in + H]
                self.register_buffer(f"gates_weight_{layer}", weight.t().contiguous())
                self.register_buffer(f"gates_bias_{layer}", bias[order] * scale)
            self.register_buffer("head_weight", head.weight.t().contiguous())
            self.register_buffer("head_bias", head.bias.clone())

    def _lstm_cell(self, layer: int, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        """One LSTM step with a single Sigmoid, which onnxruntime fuses into the Gemm before it
        (FusedGemm); the cell input tanh(z) is 2σ(2z) - 1 of the doubled rows."""
        gates = torch.sigmoid(torch.addmm(getattr(self, f"gates_bias_{layer}"), torch.cat([x, h], dim=1),
                                          getattr(self, f"gates_weight_{layer}")))
        in_gate, forget_gate, out_gate, cell_sigmoid = torch.split(gates, self.hidden, dim=1)
        c = forget_gate * c + in_gate * (2.0 * cell_sigmoid - 1.0)
        h = out_gate * torch.tanh(c)
        return h, c

    def forward(self, audio: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.hops_per_call == 1 and self.sizes[0] > self.hop:
            return self._single_hop(audio, state)
        parts = torch.split(state, self.sizes, dim=1)
        n = self.front_slots
        overlap, pcen_state, hs, cs = parts[0], list(parts[1:n]), list(parts[n::2]), list(parts[n + 1::2])
        for k in range(self.hops_per_call):
            hop_audio = audio if self.hops_per_call == 1 else audio[:, k * self.hop: (k + 1) * self.hop]
            frame = torch.cat([overlap, hop_audio], dim=1)
            overlap = frame[:, self.hop:]
            x, pcen_state = self._features(frame, pcen_state)
            for layer in range(self.layers):
                hs[layer], cs[layer] = self._lstm_cell(layer, x, hs[layer], cs[layer])
                x = hs[layer]
        packed = [overlap, *pcen_state]
        for layer in range(self.layers):
            packed += [hs[layer], cs[layer]]
        return self._probs(x), torch.cat(packed, dim=1)

    def _single_hop(self, audio: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One hop, with the overlap split into (oldest hop, rest) by the same Split that unpacks the
        state: the new overlap is then (rest, audio) and needs no Slice of its own (one op fewer)."""
        parts = torch.split(state, [self.hop, self.sizes[0] - self.hop] + self.sizes[1:], dim=1)
        n = self.front_slots + 1
        oldest, kept, pcen_state = parts[0], parts[1], list(parts[2:n])
        hs, cs = list(parts[n::2]), list(parts[n + 1::2])
        x, pcen_state = self._features(torch.cat([oldest, kept, audio], dim=1), pcen_state)
        packed = [kept, audio, *pcen_state]
        for layer in range(self.layers):
            h, c = self._lstm_cell(layer, x, hs[layer], cs[layer])
            packed += [h, c]
            x = h
        return self._probs(x), torch.cat(packed, dim=1)

    def _features(self, frame: torch.Tensor, pcen_state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A frame → the first layer's input before normalisation (folded into its weights), and PCEN's
        new running sums. PCEN takes the mel energy directly: it is exp(log-mel), so no Log unless the
        model keeps the log-mels too."""
        energy = self.dft.energy(frame)
        if self.pcen is None:
            return torch.log(energy), pcen_state
        m, q = pcen_state
        m = self.pcen.decay * m + energy
        q = self.pcen.decay * q + 1.0
        ratio = energy / (m / q).pow(self.pcen.alpha) + self.pcen.delta
        # - δ^r is in the first layer's bias; ROOT is 0.5, one Sqrt
        x = torch.sqrt(ratio) if self.pcen.root == 0.5 else ratio.pow(self.pcen.root)
        if self.keep_logmel:
            x = torch.cat([torch.log(energy), x], dim=1)
        return x, [m, q]

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.addmm(self.head_bias, x, self.head_weight)
        return torch.softmax(logits, dim=-1) if self.head_kind == "softmax" else torch.sigmoid(logits)


class EvenOddDft(nn.Module):
    """Power spectrum of a Hann-windowed frame from half the multiply-adds of the plain DFT basis.

    One radix-2 step (decimation in frequency). With y = hann · frame and its halves a = y[:N/2] and
    b = y[N/2:], e^(-2πik(n + N/2)/N) = (-1)^k e^(-2πikn/N), so the even bins are a DFT of a + b and the
    odd bins one of a - b, each over N/2 samples. Two MatMuls of N/2 rows replace one of N rows: half
    the multiply-adds and weight bytes. It needs no reversed copy of the frame, unlike the earlier fold
    that paired x[n] with x[N - n] (onnxruntime's negative-step Slice took half a MatMul's time at
    batch 64), and two ops fewer (docs/benchmarks.md, export section). Only bins some mel filter reads
    are kept, and sine columns that are zero (k = 0 and N/2) are dropped. `power` returns the squared
    cos and sin parts side by side; `mel_basis` repeats each bin's filter row for both, and `columns`
    names each of those rows (bin, "cos" or "sin"). An odd window has no halves and keeps the plain basis.
    """

    def __init__(self, frontend):
        super().__init__()
        window = frontend.window
        self.halves = window % 2 == 0
        mel = frontend.mel_basis[: window // 2 + 1]  # the frontend stacks it twice (re, im)
        used = torch.nonzero(mel.abs().sum(dim=1) > 0).flatten().tolist()
        n = torch.arange(window // 2 if self.halves else window, dtype=torch.float64)[:, None]
        self.register_buffer("hann", (0.5 - 0.5 * torch.cos(2.0 * math.pi * torch.arange(window) / window)).float())
        bases, rows, self.columns = [], [], []
        for parity in ((0, 1) if self.halves else (None,)):
            bins = [k for k in used if parity is None or k % 2 == parity]
            with_sine = [k for k in bins if 0 < k < window / 2]
            angle = lambda ks: 2.0 * math.pi * n * torch.tensor(ks, dtype=torch.float64)[None, :] / window  # noqa: E731
            bases.append(torch.cat([torch.cos(angle(bins)), -torch.sin(angle(with_sine))], dim=1).float())
            rows += bins + with_sine
            self.columns += [(k, "cos") for k in bins] + [(k, "sin") for k in with_sine]
        if self.halves:
            self.register_buffer("even_basis", bases[0])
            self.register_buffer("odd_basis", bases[1])
        else:
            self.register_buffer("basis", bases[0])
        self.register_buffer("mel_basis", mel[rows].clone())
        self.register_buffer("log_floor", torch.full((mel.shape[1],), LOG_FLOOR))  # the mel Gemm's bias

    def energy(self, frame: torch.Tensor) -> torch.Tensor:
        """[B, window] → mel energy + log floor [B, n_mels] (one Gemm after `power`)."""
        return torch.addmm(self.log_floor, self.power(frame), self.mel_basis)

    def power(self, frame: torch.Tensor) -> torch.Tensor:
        """Squared cos and sin parts of the windowed frame [B, window] for the kept bins: [B, rows of mel_basis]."""
        windowed = frame * self.hann
        if not self.halves:
            spectrum = windowed @ self.basis
        else:
            first, second = torch.split(windowed, windowed.shape[1] // 2, dim=1)
            spectrum = torch.cat([(first + second) @ self.even_basis, (first - second) @ self.odd_basis], dim=1)
        return spectrum * spectrum


def frontend_dft(frontend, factored: bool = True) -> nn.Module:
    """The step graphs' DFT for `frontend`: two stages where the window factors (and `factored`), else
    the even/odd split. Both give `energy(frame)`; the integer frontend rewrites only the even/odd one."""
    factors = factor_window(frontend.window) if factored else None
    return EvenOddDft(frontend) if factors is None else FactoredDft(frontend, factors)


def build_step_module(model: KeywordSpotter, variant: str = "fused", hops_per_call: int = 1,
                      factored_dft: bool = True) -> nn.Module:
    """The traced step module; `factored_dft=False` keeps the even/odd DFT (the integer frontend rewrites it)."""
    if variant == "fused":
        return FusedStep(model, hops_per_call, factored_dft).eval()
    if variant == "lstm-op":
        return LstmOpStep(model, hops_per_call).eval()
    raise ValueError(f"unknown graph variant {variant!r}; choose one of {', '.join(VARIANTS)}")
