"""The weight average: its arithmetic, the swap that validation and checkpoints use, and resuming."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from firstspike.model.weight_average import WeightAverage, load_raw_weights


def _set(module: nn.Linear, value: float) -> None:
    with torch.no_grad():
        module.weight.fill_(value)
        module.bias.fill_(value)


def test_average_follows_the_weights_with_a_ramped_decay():
    layer = nn.Linear(3, 2)
    _set(layer, 0.0)
    average = WeightAverage(layer, decay=0.9)
    expected = 0.0
    for step in range(1, 30):
        _set(layer, float(step))
        average.update()
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * step
    with average.swapped_in():
        torch.testing.assert_close(layer.weight, torch.full((2, 3), expected))
        state = average.state()
    assert average.updates == 29 and state["updates"] == 29
    torch.testing.assert_close(layer.weight, torch.full((2, 3), 29.0))  # the raw weights are back
    torch.testing.assert_close(state["raw_weights"][0], torch.full((2, 3), 29.0))


def test_resume_restores_both_the_average_and_the_raw_weights():
    layer = nn.Linear(3, 2)
    _set(layer, 1.0)
    average = WeightAverage(layer, decay=0.5)
    _set(layer, 5.0)
    average.update()
    with average.swapped_in():  # what a checkpoint stores: the average as the model, the raw weights aside
        saved_model = {k: v.clone() for k, v in layer.state_dict().items()}
        state = average.state()

    resumed = nn.Linear(3, 2)
    resumed.load_state_dict(saved_model)
    again = WeightAverage(resumed, decay=0.5)
    again.restore(state)
    torch.testing.assert_close(resumed.weight, torch.full((2, 3), 5.0))
    with again.swapped_in():
        torch.testing.assert_close(resumed.weight, saved_model["weight"])
    assert again.updates == 1

    plain = nn.Linear(3, 2)  # a resume that no longer averages goes on from the raw weights
    load_raw_weights(plain.parameters(), state)
    torch.testing.assert_close(plain.bias, torch.full((2,), 5.0))
    with pytest.raises(ValueError, match="do not match"):
        load_raw_weights(nn.Linear(4, 2).parameters(), state)


def test_misuse_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(layer, decay=1.0)
    average = WeightAverage(layer, decay=0.99)
    with pytest.raises(RuntimeError, match="swapped in"):
        average.state()
    with average.swapped_in(), pytest.raises(RuntimeError, match="swapped in"):
        average.update()
