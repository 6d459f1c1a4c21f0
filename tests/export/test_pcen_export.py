"""A PCEN model exports: its running sums travel in the state, and every one-hop graph matches PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from firstspike.cli import main
from firstspike.export.onnx_export import export_model
from firstspike.model.checkpoint import save_checkpoint
from firstspike.runtime import open_step_session

from export_fixtures import spiky_model


@pytest.fixture(scope="module")
def pcen_model():
    return spiky_model(pcen=True)


@pytest.fixture(scope="module")
def keep_logmel_model():
    return spiky_model(pcen=True, keep_logmel=True)


# The integer frontend rounds its DFT basis (an error floor 54-58 dB under the loudest bin), which PCEN's
# division by the running mean shows more than a log does; its exactness is test_integer_frontend.py's.
@pytest.mark.parametrize("variant, integer_frontend, atol", [("fused", False, 1e-5), ("lstm-op", False, 1e-5),
                                                             ("fused", True, 2e-2)])
@pytest.mark.parametrize("keep_logmel", [False, True], ids=["pcen", "pcen+logmel"])
def test_step_graphs_match_pytorch_hop_by_hop(request, tmp_path, variant, integer_frontend, atol, keep_logmel):
    pcen_model = request.getfixturevalue("keep_logmel_model" if keep_logmel else "pcen_model")
    if integer_frontend and keep_logmel:
        atol = 5e-2  # the log of this quiet noise shows the rounding too: test_integer_frontend.py's bound
    path = tmp_path / "pcen.onnx"
    info = export_model(pcen_model, {"mode": "rc"}, path, model_name="pcen", model_version="0", variant=variant,
                        integer_frontend=integer_frontend)
    assert [slot.name for slot in info.state_layout][:3] == ["frontend.overlap", "frontend.pcen.m", "frontend.pcen.q"]
    assert info.state_size == 240 + 41 + 2 * 24
    assert info.extra["firstspike.features"] == ("logmel+pcen" if keep_logmel else "pcen")
    session, _ = open_step_session(path)
    g = torch.Generator().manual_seed(1)
    audio = 0.003 * torch.randn(2, 16000, generator=g)
    audio[:, 6000:9000] += 0.3 * torch.sin(torch.arange(3000) * 0.12)  # an onset mid-stream
    with torch.no_grad():
        expected = pcen_model.probabilities(pcen_model(audio)).numpy()
    state = np.zeros((2, info.state_size), np.float32)
    for t in range(expected.shape[1]):
        probs, state = session.run(None, {"audio": audio[:, t * 160:(t + 1) * 160].numpy(), "state": state})
        np.testing.assert_allclose(probs, expected[:, t], atol=atol)


def test_multi_hop_refuses_a_pcen_model_clearly(pcen_model, tmp_path, capsys):
    checkpoint = tmp_path / "pcen.pt"
    save_checkpoint(checkpoint, pcen_model, "rc", {"task": "sc12"})
    assert main(["export", str(checkpoint), "-o", str(tmp_path / "m.onnx"), "--graph", "multi-hop"]) == 2
    assert "no PCEN stage" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
