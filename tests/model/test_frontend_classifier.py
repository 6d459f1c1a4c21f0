"""Streaming equals whole-clip: the frontend and the keyword spotter, hop by hop vs all at once."""

import numpy as np
import pytest
import torch

from firstspike.model.classifier import KeywordSpotter, ModelConfig, SequenceClassifier
from firstspike.model.frontend import LogMelFrontend
from firstspike.model.labels import FILLERS, SC12_COMMANDS, SC35_WORDS, map_label, task_labels


def _audio(batch=2, seconds=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(16000 * seconds)) / 16000
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    return (tone + 0.05 * torch.randn(batch, t.numel(), generator=g)).float()


def test_labels():
    assert len(SC35_WORDS) == 35 and len(set(SC35_WORDS)) == 35
    labels, firing = task_labels("sc12")
    assert labels == list(SC12_COMMANDS) + list(FILLERS) and firing == list(SC12_COMMANDS)
    assert len(task_labels("sc35")[0]) == 37
    assert map_label("marvin", "sc12") == "_unknown_"
    assert map_label("marvin", "sc35") == "marvin"
    assert map_label("Yes", "sc12") == "yes"
    assert map_label("_silence_", "sc12") == "_silence_"
    with pytest.raises(ValueError, match="unknown task"):
        task_labels("sc99")
    with pytest.raises(ValueError, match="empty"):
        map_label("", "sc12")


def test_frontend_shapes_and_spectrum():
    fe = LogMelFrontend()
    assert (fe.window, fe.hop, fe.overlap_size) == (400, 160, 240)
    feats = fe(_audio(seconds=1.0))
    assert feats.shape == (2, 100, 40)
    # A 440 Hz tone puts its energy in the low mel bands, not the top ones.
    assert feats[0, 50, :10].max() > feats[0, 50, -5:].max() + 3


def test_frontend_streaming_matches_whole_clip():
    fe = LogMelFrontend()
    audio = _audio(seconds=0.37)
    whole = fe(audio)
    overlap = fe.initial_overlap(2)
    steps = []
    for t in range(whole.shape[1]):
        feat, overlap = fe.step(audio[:, t * fe.hop:(t + 1) * fe.hop], overlap)
        steps.append(feat)
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-5, rtol=0)


def test_chrono_init_biases():
    clf = SequenceClassifier(40, 32, 2, 5, chrono_t_max=50)
    for layer in range(2):
        b = getattr(clf.lstm, f"bias_ih_l{layer}")
        forget, inp = b[32:64], b[:32]
        assert forget.min() >= 0 and forget.max() <= np.log(49) + 1e-6
        torch.testing.assert_close(inp, -forget)
        assert getattr(clf.lstm, f"bias_hh_l{layer}")[:64].abs().max() == 0


@pytest.mark.parametrize("head", ["softmax", "sigmoid"])
def test_step_matches_forward(head):
    labels, firing = task_labels("sc12")
    torch.manual_seed(0)
    model = KeywordSpotter(ModelConfig(labels, firing, hidden=32, layers=2, head=head)).eval()
    model.set_normalisation(torch.full((40,), -5.0), torch.full((40,), 2.0))
    audio = _audio(seconds=0.3)
    with torch.no_grad():
        probs = model.probabilities(model(audio))
        state = model.initial_state(2)
        stepped = []
        for t in range(probs.shape[1]):
            p, state = model.step(audio[:, t * model.hop:(t + 1) * model.hop], state)
            stepped.append(p)
    torch.testing.assert_close(torch.stack(stepped, 1), probs, atol=1e-5, rtol=0)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="firing labels"):
        ModelConfig(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="head"):
        ModelConfig(["a", "b"], ["a"], head="relu")
