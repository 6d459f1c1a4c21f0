"""`firstspike export --quantize frontend`: exact 16-bit audio times an int8 DFT basis.

Measured on the bundled model and a real recording, since an untrained model's probabilities say
little about whether quantisation kept the answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from export_fixtures import BUNDLED_CHECKPOINT, first_spike, yes_hops
from firstspike.cli import main
from firstspike.export.integer_frontend import integer_basis
from firstspike.export.onnx_export import export_model
from firstspike.export.parity import stream_onnx, torch_probs
from firstspike.export.step_graph import FusedStep
from firstspike.model.checkpoint import load_checkpoint
from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.runtime import open_step_session


@pytest.fixture(scope="module")
def bundled():
    return load_checkpoint(BUNDLED_CHECKPOINT)


@pytest.fixture(scope="module")
def integer_model(bundled, tmp_path_factory) -> Path:
    model, checkpoint = bundled
    path = tmp_path_factory.mktemp("int8") / "frontend.onnx"
    export_model(model, checkpoint, path, model_name="bundled", model_version="1", integer_frontend=True)
    return path


def test_the_graph_does_the_dft_in_integers(integer_model):
    graph = onnx.load(integer_model).graph
    integer = [n for n in graph.node if n.op_type == "MatMulInteger"]
    assert len(integer) == 2 and all("dft.int8_basis" in n.input for n in integer)  # high and low byte
    assert not [n for n in graph.node if n.op_type == "MatMul"]  # no float DFT is left
    assert {i.name for i in graph.initializer} >= {"dft.int8_basis", "dft.mel_basis", "gates_weight_0"}
    assert "dft.even_basis" not in {i.name for i in graph.initializer}


def test_it_keeps_the_bundled_model_answer_on_a_recording(bundled, integer_model):
    model, _ = bundled
    session, info = open_step_session(integer_model)
    assert info.extra["firstspike.graph"] == "fused+int8-frontend"
    audio = yes_hops()
    integer, exact = stream_onnx(session, info, audio)[0], torch_probs(model, audio, 1)[0]
    assert first_spike(integer, info) == first_spike(exact, info) == (42, "yes")
    assert np.abs(integer - exact).max() < 0.05  # 0.013 when written; the float graph is within 1e-4


def test_batching_never_changes_a_stream(integer_model):
    """Integer arithmetic row by row: unlike dynamic quantisation, a stream's probabilities are the same
    bits alone and among other streams."""
    session, info = open_step_session(integer_model)
    audio = yes_hops()
    noise = (0.05 * np.random.default_rng(1).standard_normal((5, audio.shape[1]))).astype(np.float32)
    alone = stream_onnx(session, info, audio)[0]
    among = stream_onnx(session, info, np.concatenate([noise[:2], audio, noise[2:]]))[2]
    assert np.array_equal(alone, among)


def test_sixteen_bit_audio_is_split_exactly(integer_model):
    """The graph matches PyTorch to float precision once PyTorch uses the same rounded basis: so the
    high/low byte split loses nothing of 16-bit audio, even at full scale and at one LSB."""
    model, _ = load_checkpoint(BUNDLED_CHECKPOINT)
    session, info = open_step_session(integer_model)
    step = FusedStep(model, factored_dft=False)
    basis, scale = integer_basis(step)
    columns = [k if part == "cos" else info.window_samples // 2 + 1 + k for k, part in step.dft.columns]
    model.frontend.dft_basis[:, columns] = torch.tensor(basis * scale, dtype=torch.float32)
    pcm = np.array([[32767, -32768] * 800, [1, -1] * 800, [-32768] * 1600], np.float32) / 32768
    speech = yes_hops()[:, :1600]
    audio = np.concatenate([pcm, speech, np.round(speech * 0.01 * 32768) / 32768])  # 16-bit, quiet
    assert np.abs(stream_onnx(session, info, audio) - torch_probs(model, audio, 1)).max() < 1e-4


def test_a_window_too_long_for_int32_is_refused():
    config = ModelConfig(labels=["yes", "no", "_silence_", "_unknown_"], firing_labels=["yes", "no"],
                         window_ms=200, hidden=8)
    with pytest.raises(ValueError, match="too long for the integer frontend"):
        integer_basis(FusedStep(KeywordSpotter(config), factored_dft=False))


def test_cli_parts(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    for parts, graph, integer_ops in ((None, "fused+int8", 1), ("all", "fused+int8-frontend+int8", 3),
                                      ("frontend", "fused+int8-frontend", 2), ("lstm", "fused+int8", 1)):
        argv = ["export", str(BUNDLED_CHECKPOINT), "-o", str(out), "--quantize"] + ([parts] if parts else [])
        assert main(argv) == 0
        _, info = open_step_session(out)
        assert info.extra["firstspike.graph"] == graph and info.exporter_version.endswith(f"graph {graph})")
        assert sum(n.op_type.startswith("MatMulInteger") for n in onnx.load(out).graph.node) == integer_ops
        assert f"graph {graph}" in capsys.readouterr().out
    assert main(["export", str(BUNDLED_CHECKPOINT), "-o", str(out), "--graph", "lstm-op", "--quantize", "frontend"]) == 2
    assert "the integer frontend needs --graph fused" in capsys.readouterr().err
