"""PCEN (model/pcen.py): streaming equals whole sequence, gain falls away, a fresh stream has no transient."""

from __future__ import annotations

import pytest
import torch

from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.model.features import FeatureSet
from firstspike.model.frontend import LogMelFrontend
from firstspike.model.labels import task_labels
from firstspike.model.pcen import Pcen


def _speechlike(seconds: float = 1.3, seed: int = 0) -> torch.Tensor:
    """A noise floor with a louder burst of tone in the middle: onsets for PCEN to find."""
    g = torch.Generator().manual_seed(seed)
    n = int(16000 * seconds)
    audio = 0.003 * torch.randn(2, n, generator=g)
    t = torch.arange(n // 3) / 16000
    audio[:, n // 3: n // 3 + t.numel()] += 0.2 * torch.sin(2 * torch.pi * 300 * t) * torch.sin(2 * torch.pi * 3 * t)
    return audio


def test_frame_by_frame_equals_whole_sequence_across_chunks():
    logmel = LogMelFrontend()(_speechlike())  # 130 frames: four 32-frame chunks and a partial one
    pcen = Pcen(40)
    whole = pcen(logmel)
    state, stepped = pcen.initial_state(2), []
    for t in range(logmel.shape[1]):
        out, state = pcen.step(logmel[:, t], state)
        stepped.append(out)
    torch.testing.assert_close(torch.stack(stepped, 1), whole, atol=1e-5, rtol=1e-5)


def test_a_louder_stream_gives_nearly_the_same_features():
    frontend, pcen = LogMelFrontend(), Pcen(40)
    audio = _speechlike()
    quiet, loud = pcen(frontend(audio)), pcen(frontend(20.0 * audio))  # +26 dB
    log_quiet, log_loud = frontend(audio), frontend(20.0 * audio)
    # log-mel moves by log(400) = 6 everywhere; PCEN (alpha 0.98) keeps the gain's
    # 0.02nd power, 400^0.02 = 1.13, under the square root
    assert (log_loud - log_quiet).mean() > 5.9
    assert (loud - quiet).abs().max() < 0.1 * quiet.abs().max()


def test_a_fresh_stream_starts_from_its_first_frame():
    """The bias-corrected mean equals the first frame's energy, so frame 0 of a steady signal is no onset."""
    pcen = Pcen(40)
    steady = torch.full((1, 50, 40), -4.0)
    out = pcen(steady)
    torch.testing.assert_close(out, out[:, :1].expand_as(out))
    expected = (torch.exp(torch.tensor(-4.0)) ** (1 - pcen.alpha) + pcen.delta) ** pcen.root - pcen.offset
    torch.testing.assert_close(out[0, 0, 0], expected)


@pytest.mark.parametrize("keep_logmel", [False, True], ids=["pcen", "pcen+logmel"])
def test_a_pcen_model_streams_like_its_whole_clip_forward_and_fits_its_normalisation(keep_logmel):
    """With `keep_logmel` the LSTM reads the log-mels first, then PCEN, each with its own statistics."""
    labels, firing = task_labels("sc12")
    torch.manual_seed(0)
    model = KeywordSpotter(ModelConfig(labels, firing, hidden=16, pcen=True, keep_logmel=keep_logmel)).eval()
    assert model.classifier.lstm.input_size == (80 if keep_logmel else 40)
    assert model.frontend_state_size == 240 + 41
    audio = _speechlike(seconds=0.6)
    logmel = model.frontend(audio)
    data = FeatureSet(feats=logmel.reshape(-1, 40).numpy(), offsets=torch.tensor([0, 60, 120]).numpy(), rows=[None, None],
                      targets=torch.zeros(2, dtype=torch.long).numpy(), onset_frames=torch.zeros(2).numpy(),
                      offset_frames=torch.zeros(2).numpy(), early_targets=torch.zeros(2).numpy())
    model.fit_normalisation(data)
    read = torch.cat([logmel, model.pcen(logmel)], dim=-1) if keep_logmel else model.pcen(logmel)
    read = read.reshape(-1, read.shape[-1])
    torch.testing.assert_close(model.feat_mean, read.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(model.feat_std, read.std(0).clamp_min(1e-3), atol=1e-5, rtol=0)
    with torch.no_grad():
        whole = model.probabilities(model(audio))
        state, stepped = model.initial_state(2), []
        for t in range(whole.shape[1]):
            p, state = model.step(audio[:, t * model.hop:(t + 1) * model.hop], state)
            stepped.append(p)
    torch.testing.assert_close(torch.stack(stepped, 1), whole, atol=1e-5, rtol=0)


def test_keep_logmel_without_pcen_is_refused():
    labels, firing = task_labels("sc12")
    with pytest.raises(ValueError, match="needs pcen"):
        ModelConfig(labels, firing, keep_logmel=True)
