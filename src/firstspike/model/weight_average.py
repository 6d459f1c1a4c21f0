"""An exponential moving average of the classifier's weights (`firstspike train --ema DECAY`).

Why: the held-out voices are a domain shift (engines and speakers never heard in training), and
averaging the weights along the training trajectory is a cheap, well-known way to land in flatter
minima that transfer better to unseen domains (Polyak averaging; SWAD for domain generalisation).
It costs one lerp per parameter and optimiser step and nothing at inference: the averaged weights
*are* the model that is validated, checkpointed, evaluated and exported.

The raw weights keep training as before. While `swapped_in()` is active the module holds the
averages and this object holds the raw weights, which is how a checkpoint stores both: the model's
`state_dict` is the average, and `state()` the raw weights that `--resume` continues from.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    def __init__(self, module: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the average's decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._other = [p.detach().clone() for p in self._params]  # the averages, or the raw weights while swapped
        self._swapped = False

    def update(self) -> None:
        """Fold the current weights in, after an optimiser step. The decay ramps up over the first
        steps ((1 + n) / (10 + n)), so the average is not anchored to the random initial weights."""
        if self._swapped:
            raise RuntimeError("update() while the averaged weights are swapped in")
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self._other, [p.detach() for p in self._params], 1.0 - decay)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Put the averaged weights into the module (validation, checkpoints), then the raw ones back."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self) -> None:
        with torch.no_grad():
            for param, other in zip(self._params, self._other):
                held = param.detach().clone()
                param.copy_(other)
                other.copy_(held)
        self._swapped = not self._swapped

    def state(self) -> dict:
        """What a checkpoint saved inside `swapped_in()` needs besides the model: the raw weights."""
        if not self._swapped:
            raise RuntimeError("state() is only meaningful while the averaged weights are swapped in")
        return {"decay": self.decay, "updates": self.updates, "raw_weights": [t.detach().cpu().clone() for t in self._other]}

    def restore(self, state: dict) -> None:
        """Resume: the module holds the averages a checkpoint stored; put the raw weights back into it."""
        with torch.no_grad():
            for param, other in zip(self._params, self._other):
                other.copy_(param)
        load_raw_weights(self._params, state)
        self.updates = int(state["updates"])


def load_raw_weights(params, state: dict) -> None:
    """Copy a checkpoint's raw weights (`WeightAverage.state()`) into `params`; also how a run that no
    longer averages resumes one that did: it goes on from the raw weights."""
    params = [p for p in params if p.requires_grad]
    raw = state["raw_weights"]
    if len(raw) != len(params) or any(r.shape != p.shape for r, p in zip(raw, params)):
        raise ValueError("the checkpoint's raw weights do not match this model")
    with torch.no_grad():
        for param, saved in zip(params, raw):
            param.copy_(saved.to(param.device))
