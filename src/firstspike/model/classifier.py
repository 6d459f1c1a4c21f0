"""The LSTM keyword spotter: log-mel frontend → optional PCEN → normalisation → LSTM → per-step scores.

`SequenceClassifier` is generic (feature sequences in, per-step logits out) so the rank-coding runner
and the paper-reproduction toys share it. `KeywordSpotter` adds the audio frontend, the optional
per-channel energy normalisation (`model.pcen`) and the feature normalisation, and offers the same
computation one hop at a time (`step`) for streaming and export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from firstspike.model.features import FeatureSet, normalise
from firstspike.model.frontend import LogMelFrontend
from firstspike.model.pcen import Pcen

HEADS = ("softmax", "sigmoid")


@dataclass
class ModelConfig:
    labels: list[str]
    firing_labels: list[str]
    sample_rate: int = 16000
    window_ms: float = 25
    hop_ms: float = 10
    n_mels: int = 40
    hidden: int = 128
    layers: int = 1
    threshold: float = 0.9
    head: str = "softmax"
    chrono_t_max: float = 100.0
    pcen: bool = False  # per-channel energy normalisation of the log-mels (model/pcen.py)
    keep_logmel: bool = False  # with PCEN: the LSTM reads the log-mels too, beside the PCEN features

    def __post_init__(self) -> None:
        self.labels = list(self.labels)
        self.firing_labels = list(self.firing_labels)
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be non-empty and unique, got {self.labels}")
        missing = [l for l in self.firing_labels if l not in self.labels]
        if missing or not self.firing_labels:
            raise ValueError(f"firing labels {missing or '[]'} are not among the labels {self.labels}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], got {self.threshold}")
        if self.hidden <= 0 or self.layers <= 0:
            raise ValueError("hidden and layers must be positive")
        if self.keep_logmel and not self.pcen:
            raise ValueError("keep_logmel keeps the log-mels beside PCEN's features, so it needs pcen")

    @property
    def n_features(self) -> int:
        """What the LSTM reads per frame: the mel bands, twice with `keep_logmel` (log-mels, then PCEN)."""
        return self.n_mels * (2 if self.keep_logmel else 1)

    @property
    def firing_mask(self) -> torch.Tensor:
        """Boolean [K]: True for classes that may fire (spike)."""
        return torch.tensor([l in self.firing_labels for l in self.labels], dtype=torch.bool)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        return cls(**data)


def chrono_init(lstm: nn.LSTM, t_max: float, generator: torch.Generator | None = None) -> None:
    """Chrono initialisation (Tallec & Ollivier 2018) of every layer's gate biases.

    Forget bias log(U[1, T_max - 1]) and input bias its negative, so memory time-scales spread over
    the range of dependencies the task needs instead of all starting near one step.
    """
    if t_max <= 2:
        raise ValueError(f"chrono t_max must exceed 2, got {t_max}")
    hidden = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            b_ih = getattr(lstm, f"bias_ih_l{layer}")
            b_hh = getattr(lstm, f"bias_hh_l{layer}")
            forget = torch.log(torch.empty(hidden).uniform_(1.0, t_max - 1.0, generator=generator))
            # PyTorch gate order: input, forget, cell, output.
            b_ih[hidden: 2 * hidden] = forget
            b_ih[:hidden] = -forget
            b_hh[: 2 * hidden] = 0.0


class SequenceClassifier(nn.Module):
    """LSTM (batch_first) + linear readout at every step: [B, T, F] → logits [B, T, K]."""

    def __init__(self, n_in: int, hidden: int, layers: int, n_classes: int, chrono_t_max: float = 100.0):
        super().__init__()
        self.lstm = nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)
        chrono_init(self.lstm, chrono_t_max)

    @property
    def hidden_size(self) -> int:
        return self.lstm.hidden_size

    @property
    def num_layers(self) -> int:
        return self.lstm.num_layers

    def initial_state(self, batch: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.num_layers, batch, self.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(self, feats: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Return (logits [B, T, K], (h, c)); state defaults to zeros."""
        out, state = self.lstm(feats, state)
        return self.head(out), state


def scores(logits: torch.Tensor, head: str) -> torch.Tensor:
    """Logits → the per-class scores that are compared with the threshold."""
    return torch.softmax(logits, dim=-1) if head == "softmax" else torch.sigmoid(logits)


class KeywordSpotter(nn.Module):
    """Audio in, per-frame class probabilities out; whole clips (`forward`) or one hop at a time (`step`)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.frontend = LogMelFrontend(config.sample_rate, config.window_ms, config.hop_ms, config.n_mels)
        self.register_buffer("feat_mean", torch.zeros(config.n_features))
        self.register_buffer("feat_std", torch.ones(config.n_features))
        self.pcen = Pcen(config.n_mels) if config.pcen else None
        self.classifier = SequenceClassifier(config.n_features, config.hidden, config.layers, len(config.labels), config.chrono_t_max)

    @property
    def hop(self) -> int:
        return self.frontend.hop

    @property
    def firing_mask(self) -> torch.Tensor:
        return self.config.firing_mask.to(self.feat_mean.device)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store feature statistics from the training split (std floored to avoid blow-ups)."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-3))

    def fit_normalisation(self, data: FeatureSet) -> None:
        """Statistics of the features the LSTM reads (after PCEN, if any) over every frame of `data`."""
        self.set_normalisation(*data.normalisation(None if self.pcen is None else self.from_logmel))

    def from_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """Raw log-mel [B, T, F] from a stream's start → the LSTM's features before normalisation."""
        return logmel if self.pcen is None else self._beside_logmel(logmel, self.pcen(logmel))

    def _beside_logmel(self, logmel: torch.Tensor, pcen: torch.Tensor) -> torch.Tensor:
        """PCEN's features, after the log-mels they came from when the model keeps those too."""
        return torch.cat([logmel, pcen], dim=-1) if self.config.keep_logmel else pcen

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std

    def prepare(self, raw: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """A padded batch of raw log-mel [B, T, F] (a `FeatureSet` batch) → what the LSTM reads, padding zero."""
        return normalise(self.from_logmel(raw), lengths, self.feat_mean, self.feat_std)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, N] → the LSTM's input [B, N // hop, n_features]: log-mel and/or PCEN, normalised."""
        return self.normalise(self.from_logmel(self.frontend(audio)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio [B, N] → logits [B, T, K]."""
        logits, _ = self.classifier(self.features(audio))
        return logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return scores(logits, self.config.head)

    @property
    def frontend_state_size(self) -> int:
        """The frontend's overlap, then PCEN's running sums if the model has them."""
        return self.frontend.overlap_size + (self.pcen.state_size if self.pcen is not None else 0)

    def initial_state(self, batch: int, device=None):
        """(frontend [B, frontend_state_size], h [L, B, H], c [L, B, H]), all zeros: a fresh stream."""
        device = self.feat_mean.device if device is None else device
        h, c = self.classifier.initial_state(batch, device)
        return torch.zeros(batch, self.frontend_state_size, device=device), h, c

    def step(self, hop_audio: torch.Tensor, state):
        """One hop [B, hop] → (probs [B, K], new state); reproduces `forward` frame by frame."""
        front, h, c = state
        overlap, pcen_state = torch.split(front, [self.frontend.overlap_size, front.shape[1] - self.frontend.overlap_size], dim=1)
        feat, overlap = self.frontend.step(hop_audio, overlap)
        if self.pcen is not None:
            pcen, pcen_state = self.pcen.step(feat, pcen_state)
            feat = self._beside_logmel(feat, pcen)
        logits, (h, c) = self.classifier(self.normalise(feat).unsqueeze(1), (h, c))
        return self.probabilities(logits[:, 0]), (torch.cat([overlap, pcen_state], dim=1), h, c)
