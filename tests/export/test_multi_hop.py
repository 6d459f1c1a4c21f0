"""`--graph multi-hop`: any whole number of hops per call, every hop's probabilities, same results as hop by hop."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from firstspike.cli import main
from firstspike.contract import ContractError
from firstspike.export.onnx_export import export_model
from firstspike.export.parity import parity_on, stream_onnx, torch_probs
from firstspike.model.checkpoint import save_checkpoint
from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.model.labels import task_labels
from firstspike.runtime import bind_frames, bind_step, open_step_session

from export_fixtures import spiky_model


def _export(model: KeywordSpotter, path) -> tuple:
    export_model(model, {"threshold": 0.5}, path, model_name="mh", model_version="1", variant="multi-hop")
    return open_step_session(path)


def _speechlike(seconds: float, rows: int = 3) -> np.ndarray:
    """Noise bursts of varied loudness, so the model's outputs move from frame to frame."""
    rng = np.random.default_rng(3)
    n = int(seconds * 16000)
    envelope = np.repeat(rng.uniform(0.0, 0.4, (rows, n // 800 + 1)), 800, axis=1)[:, :n]
    return (envelope * rng.standard_normal((rows, n))).astype(np.float32)


@pytest.mark.parametrize("layers,head,window_ms", [(1, "softmax", 25), (2, "sigmoid", 25), (1, "softmax", 20)])
def test_any_chunking_gives_the_hop_by_hop_results(layers, head, window_ms, tmp_path):
    """One call over n hops = n calls of one hop = PyTorch's whole-clip forward, for every chunking.

    window_ms=20 is a window of exactly two hops, the case with no partial hop in each frame."""
    model = spiky_model(hidden=16, layers=layers, seed=2, head=head)
    if window_ms != 25:
        config = ModelConfig(**{**model.config.to_dict(), "window_ms": window_ms})
        model = KeywordSpotter(config).eval()
        model.set_normalisation(torch.full((40,), -6.0), torch.full((40,), 3.0))
    session, info = _export(model, tmp_path / "mh.onnx")
    assert info.variable_hops and info.hops_per_call == 1 and info.extra["firstspike.graph"] == "multi-hop"
    audio = _speechlike(1.3)
    hops = audio.shape[1] // info.hop_samples
    reference = torch_probs(model, audio)
    assert parity_on(session, info, model, audio) <= 1e-4  # hop by hop and in one call

    hop_by_hop = stream_onnx(session, info, audio)
    step, frames = bind_step(session), bind_frames(session)
    hop_state = np.zeros((3, info.state_size), np.float32)
    for t in range(hops):
        _, hop_state = step(np.ascontiguousarray(audio[:, t * 160: (t + 1) * 160]), hop_state)
    for sizes in ([hops], [1, 2, 3, 5, 8, 13, hops - 32], [10] * (hops // 10) + [hops % 10]):
        sizes = [size for size in sizes if size]
        assert sum(sizes) == hops
        state, got, start = np.zeros((3, info.state_size), np.float32), [], 0
        for size in sizes:
            frame_probs, state = frames(np.ascontiguousarray(audio[:, start * 160: (start + size) * 160]), state)
            assert frame_probs.shape == (3, size, len(info.labels))
            got.append(frame_probs)
            start += size
        got = np.concatenate(got, axis=1)
        np.testing.assert_allclose(got, hop_by_hop, atol=1e-5)
        np.testing.assert_allclose(got, reference, atol=1e-4)
        np.testing.assert_allclose(state, hop_state, atol=1e-5)


def test_probs_is_the_last_hop_of_frame_probs(tmp_path):
    session, info = _export(spiky_model(hidden=16), tmp_path / "mh.onnx")
    audio = _speechlike(0.25, rows=2)[:, : 25 * 160]
    probs, state, frame_probs = session.run(["probs", "state_out", "frame_probs"],
                                            {"audio": audio, "state": np.zeros((2, info.state_size), np.float32)})
    assert frame_probs.shape == (2, 25, 12) and probs.shape == (2, 12) and state.shape == (2, info.state_size)
    np.testing.assert_array_equal(probs, frame_probs[:, -1])
    onnx.checker.check_model(onnx.load(tmp_path / "mh.onnx"), full_check=True)


def test_export_cli_writes_and_self_checks_it(checkpoint, tmp_path, capsys):
    out = tmp_path / "mh.onnx"
    assert main(["export", str(checkpoint), "-o", str(out), "--graph", "multi-hop"]) == 0
    printed = capsys.readouterr().out
    assert "graph multi-hop" in printed and "any number of hops" in printed
    _, info = open_step_session(out)
    assert info.variable_hops
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert meta["variable_hops"] == "true" and meta["hops_per_call"] == "1"


def test_other_graphs_carry_no_variable_hops_key(exported):
    assert "variable_hops" not in {p.key for p in onnx.load(exported).metadata_props}
    _, info = open_step_session(exported)
    assert not info.variable_hops


@pytest.mark.parametrize("extra,message", [(["--quantize"], "--quantize needs --graph fused"),
                                           (["--hops-per-call", "4"], "leave --hops-per-call at 1")])
def test_export_refuses_what_the_multi_hop_graph_cannot_do(extra, message, checkpoint, tmp_path, capsys):
    out = tmp_path / "mh.onnx"
    assert main(["export", str(checkpoint), "-o", str(out), "--graph", "multi-hop", *extra]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def _with_metadata(source, path, **changes):
    proto = onnx.load(source)
    props = {p.key: p for p in proto.metadata_props}
    for key, value in changes.items():
        if key in props:
            props[key].value = value
        else:
            proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, path)
    return path


def test_metadata_that_disagrees_about_variable_hops_is_refused(exported, tmp_path):
    with pytest.raises(ContractError, match="variable_hops, but graph input 'audio' has a fixed length of 160"):
        open_step_session(_with_metadata(exported, tmp_path / "one-hop.onnx", variable_hops="true"))
    labels, firing = task_labels("sc12")
    multi = tmp_path / "mh.onnx"
    export_model(KeywordSpotter(ModelConfig(labels, firing, hidden=8)).eval(), {"threshold": 0.9}, multi,
                 model_name="mh", model_version="1", variant="multi-hop")
    with pytest.raises(ContractError, match="variable_hops must be 'true' or 'false'"):
        open_step_session(_with_metadata(multi, tmp_path / "maybe.onnx", variable_hops="maybe"))
    with pytest.raises(ContractError, match="a variable_hops graph has hops_per_call 1, not 2"):
        open_step_session(_with_metadata(multi, tmp_path / "two.onnx", hops_per_call="2"))


def test_verify_onnx_checks_whole_clips_in_one_call(corpus, tmp_path, capsys):
    model = spiky_model(hidden=16, layers=2, seed=1)
    ckpt = save_checkpoint(tmp_path / "mh.pt", model, "rc", {})
    onnx_path = tmp_path / "mh.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path), "--graph", "multi-hop"]) == 0
    capsys.readouterr()
    assert main(["verify-onnx", str(onnx_path), "--checkpoint", str(ckpt), "--corpus", str(corpus),
                 "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "and each clip in one call" in out and "12/12" in out
