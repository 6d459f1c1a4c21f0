"""The two-stage DFT of the `fused` graph (`export/factored_dft.py`) against the training frontend.

The training frontend computes the mel energy with one plain [window, 2·bins] DFT basis; the step
graph's factored DFT must give the same energies, in PyTorch and once exported through onnxruntime.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export_fixtures import BUNDLED_CHECKPOINT, yes_hops
from firstspike.export.factored_dft import FactoredDft, factor_window
from firstspike.export.onnx_export import export_model
from firstspike.export.parity import stream_onnx, torch_probs
from firstspike.export.step_graph import EvenOddDft, FusedStep
from firstspike.model.checkpoint import load_checkpoint
from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.model.frontend import LOG_FLOOR, LogMelFrontend
from firstspike.runtime import open_step_session


def plain_energy(frontend: LogMelFrontend, frames: torch.Tensor) -> torch.Tensor:
    """The training frontend's mel energy (before its log) of windows [B, window]."""
    return torch.exp(frontend.frames_to_features(frames)) - LOG_FLOOR


@pytest.mark.parametrize("sample_rate, window_ms", [(16000, 25), (8000, 25), (16000, 32), (16000, 30), (22050, 25)])
def test_it_gives_the_plain_dft_energies(sample_rate, window_ms):
    frontend = LogMelFrontend(sample_rate=sample_rate, window_ms=window_ms)
    factors = factor_window(frontend.window)
    assert factors is not None and factors[0] * factors[1] == frontend.window
    frames = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (7, frontend.window)), dtype=torch.float32)
    expected = plain_energy(frontend, frames)
    got = FactoredDft(frontend, factors).energy(frames) - LOG_FLOOR
    # float32 arithmetic either way: compare against the largest energy of each frame
    assert (torch.abs(got - expected) / expected.max(dim=1, keepdim=True).values).max() < 1e-5


def test_quiet_bands_keep_their_precision_beside_loud_ones():
    """A loud low tone and a quiet high one: the quiet band's energy must survive the two stages."""
    frontend = LogMelFrontend()
    t = np.arange(frontend.window) / frontend.sample_rate
    frame = torch.tensor(0.9 * np.sin(2 * np.pi * 300 * t) + 1e-3 * np.sin(2 * np.pi * 6000 * t),
                         dtype=torch.float32)[None]
    expected = plain_energy(frontend, frame)
    got = FactoredDft(frontend, factor_window(frontend.window)).energy(frame) - LOG_FLOOR
    loud = expected > 1e-3 * expected.max()
    quiet_band = int(np.argmin(np.abs(frontend.band_centres_hz - 6000)))
    assert torch.allclose(got[loud], expected[loud], rtol=1e-4)
    assert abs(float(got[0, quiet_band] / expected[0, quiet_band]) - 1) < 1e-2


def test_the_factors_are_the_pair_nearest_the_square_root():
    assert factor_window(400) == (20, 20)
    assert factor_window(200) == (10, 20)
    assert factor_window(551) == (19, 29)
    assert factor_window(401) is None  # prime: the even/odd split stays
    assert factor_window(14) is None   # 2 × 7: a stage of 2 saves nothing


def test_the_step_falls_back_to_the_even_odd_split_when_the_window_does_not_factor():
    labels = dict(labels=["yes", "no", "_silence_", "_unknown_"], firing_labels=["yes", "no"], hidden=8)
    assert isinstance(FusedStep(KeywordSpotter(ModelConfig(**labels))).dft, FactoredDft)
    assert isinstance(FusedStep(KeywordSpotter(ModelConfig(**labels)), factored_dft=False).dft, EvenOddDft)
    prime = KeywordSpotter(ModelConfig(**labels, window_ms=25.0625))  # 401 samples
    assert prime.frontend.window == 401 and isinstance(FusedStep(prime).dft, EvenOddDft)


def test_the_exported_graph_keeps_parity_with_pytorch(tmp_path):
    """The bundled model exported with the factored DFT: same probabilities as PyTorch, hop by hop."""
    model, checkpoint = load_checkpoint(BUNDLED_CHECKPOINT)
    path = tmp_path / "factored.onnx"
    export_model(model, checkpoint, path, model_name="bundled", model_version="1")
    graph = onnx.load(path).graph
    assert {"dft.first_basis", "dft.second_basis", "dft.mel_basis"} <= {i.name for i in graph.initializer}
    session, info = open_step_session(path)
    audio = yes_hops()
    assert np.abs(stream_onnx(session, info, audio) - torch_probs(model, audio, 1)).max() < 1e-4
