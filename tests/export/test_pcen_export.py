"""A PCEN model exports: its running sums travel in the state, and every graph matches PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from firstspike.export.onnx_export import export_model
from firstspike.runtime import bind_frames, open_step_session

from export_fixtures import spiky_model


def _noise_with_an_onset(samples: int, seed: int) -> torch.Tensor:
    """Two streams of quiet noise with a tone burst mid-stream: an onset for PCEN's running mean."""
    audio = 0.003 * torch.randn(2, samples, generator=torch.Generator().manual_seed(seed))
    audio[:, 6000:9000] += 0.3 * torch.sin(torch.arange(3000) * 0.12)
    return audio


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
    audio = _noise_with_an_onset(16000, seed=1)
    with torch.no_grad():
        expected = pcen_model.probabilities(pcen_model(audio)).numpy()
    state = np.zeros((2, info.state_size), np.float32)
    for t in range(expected.shape[1]):
        probs, state = session.run(None, {"audio": audio[:, t * 160:(t + 1) * 160].numpy(), "state": state})
        np.testing.assert_allclose(probs, expected[:, t], atol=atol)


@pytest.mark.parametrize("keep_logmel", [False, True], ids=["pcen", "pcen+logmel"])
def test_the_multi_hop_graph_runs_pcen_over_any_chunking(request, tmp_path, keep_logmel):
    """PCEN's running sums over n hops in one product: every chunking gives PyTorch's whole-clip results,
    and the state after the last chunk is the state of hop-by-hop calls."""
    model = request.getfixturevalue("keep_logmel_model" if keep_logmel else "pcen_model")
    path = tmp_path / "mh.onnx"
    info = export_model(model, {"mode": "rc"}, path, model_name="pcen", model_version="0", variant="multi-hop")
    assert info.variable_hops and info.extra["firstspike.features"] == ("logmel+pcen" if keep_logmel else "pcen")
    session, _ = open_step_session(path)
    frames = bind_frames(session)
    audio = _noise_with_an_onset(20800, seed=2)
    with torch.no_grad():
        expected = model.probabilities(model(audio)).numpy()
    audio = audio.numpy()
    hops = expected.shape[1]
    final_states = []
    for sizes in ([hops], [1] * hops, [1, 2, 3, 5, 8, 13, 34, 64], [10] * (hops // 10)):  # 130 hops
        sizes = [size for size in sizes if size]
        assert sum(sizes) == hops
        state, got, start = np.zeros((2, info.state_size), np.float32), [], 0
        for size in sizes:
            frame_probs, state = frames(np.ascontiguousarray(audio[:, start * 160: (start + size) * 160]), state)
            got.append(frame_probs)
            start += size
        np.testing.assert_allclose(np.concatenate(got, axis=1), expected, atol=1e-4)
        final_states.append(state)
    for state in final_states[1:]:
        np.testing.assert_allclose(state, final_states[0], rtol=1e-4, atol=1e-5)
