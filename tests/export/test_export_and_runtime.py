"""The exported file is self-contained and contract-conformant; runtime.py refuses what it must."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import onnx
import pytest
import torch

from firstspike.cli import main
from firstspike.contract import ContractError
from firstspike.runtime import make_session_options, open_step_session

from export_fixtures import spiky_model


def test_one_self_contained_file_with_full_metadata(exported):
    assert sorted(p.name for p in exported.parent.iterdir()) == [exported.name]
    proto = onnx.load(exported, load_external_data=False)
    onnx.checker.check_model(proto, full_check=True)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    for key in ("labels", "firing_labels", "threshold", "sample_rate", "hop_samples", "window_samples",
                "state_size", "state_layout", "model_name", "model_version", "training_data",
                "exporter_version", "opset"):
        assert meta[key], key
    assert json.loads(meta["training_data"])["corpus"] == "espeak test words"
    session, info = open_step_session(exported)
    assert info.full_name == "spiky@3" and info.threshold == 0.5 and info.opset == 17
    assert (info.sample_rate, info.hop_samples, info.window_samples) == (16000, 160, 400)
    assert [s.name for s in info.state_layout] == ["frontend.overlap", "lstm.0.h", "lstm.0.c"]
    assert info.state_size == 240 + 2 * 24
    assert [i.shape for i in session.get_inputs()] == [["batch", 160], ["batch", info.state_size]]


def test_batch_is_dynamic_and_streams_are_independent(exported):
    session, info = open_step_session(exported)
    rng = np.random.default_rng(1)
    audio = (0.2 * rng.standard_normal((5, 30, 160))).astype(np.float32)
    state = np.zeros((5, info.state_size), np.float32)
    alone = [np.zeros((1, info.state_size), np.float32) for _ in range(5)]
    for t in range(30):
        probs, state = session.run(None, {"audio": audio[:, t], "state": state})
        for b in range(5):
            p1, alone[b] = session.run(None, {"audio": audio[b:b + 1, t], "state": alone[b]})
            np.testing.assert_allclose(p1[0], probs[b], atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_step_graph_matches_pytorch_step_state_for_state(exported):
    model = spiky_model()
    session, info = open_step_session(exported)
    audio = 0.2 * torch.randn(2, 160)
    state = model.initial_state(2)
    flat = np.zeros((2, info.state_size), np.float32)
    with torch.no_grad():
        for _ in range(5):
            probs, state = model.step(audio, state)
            p, flat = session.run(None, {"audio": audio.numpy(), "state": flat})
    overlap, h, c = state
    np.testing.assert_allclose(p, probs.numpy(), atol=1e-5)
    np.testing.assert_allclose(flat, torch.cat([overlap, h[0], c[0]], dim=1).numpy(), atol=1e-5)


def _edit_metadata(source, target, **changes):
    proto = onnx.load(source)
    for prop in proto.metadata_props:
        if prop.key in changes:
            prop.value = changes[prop.key]
    onnx.save(proto, target)
    return target


def test_mismatched_metadata_is_refused_with_a_reason(exported, tmp_path):
    meta = {p.key: p.value for p in onnx.load(exported).metadata_props}
    layout = json.loads(meta["state_layout"])
    layout[-1]["size"] += 4
    bad = _edit_metadata(exported, tmp_path / "state.onnx", state_layout=json.dumps(layout),
                         state_size=str(int(meta["state_size"]) + 4))
    with pytest.raises(ContractError, match=r"'state' has last dimension 288, metadata says 292"):
        open_step_session(bad)
    bad = _edit_metadata(exported, tmp_path / "size.onnx", state_size="300")
    with pytest.raises(ContractError, match="state_size=300 but state_layout adds up to 288"):
        open_step_session(bad)
    labels = json.loads(meta["labels"]) + ["extra"]
    bad = _edit_metadata(exported, tmp_path / "labels.onnx", labels=json.dumps(labels))
    with pytest.raises(ContractError, match=r"'probs' has last dimension 12, metadata says 13"):
        open_step_session(bad)
    bad = _edit_metadata(exported, tmp_path / "hop.onnx", hop_samples="320")
    with pytest.raises(ContractError, match=r"'audio' has last dimension 160, metadata says 320"):
        open_step_session(bad)


def test_non_firstspike_and_missing_files(exported, tmp_path):
    proto = onnx.load(exported)
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "plain.onnx")
    with pytest.raises(ContractError, match="not a firstspike step model"):
        open_step_session(tmp_path / "plain.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx at all")
    with pytest.raises(ContractError, match="is not a loadable ONNX model"):
        open_step_session(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="step model not found"):
        open_step_session(tmp_path / "missing.onnx")
    with pytest.raises(ValueError):
        make_session_options(0)


def test_export_rejects_bad_checkpoints(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["export", str(tmp_path / "junk.pt"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "is not a firstspike checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_quantized_export_still_conforms(checkpoint, tmp_path):
    """`--quantize lstm` makes the LSTM gates int8 and leaves the audio frontend and the head in float32."""
    out = tmp_path / "int8.onnx"
    assert main(["export", str(checkpoint), "-o", str(out), "--quantize", "lstm"]) == 0
    session, info = open_step_session(out)
    assert info.extra["firstspike.graph"] == "fused+int8"
    nodes = onnx.load(out).graph.node
    assert sum(n.op_type == "MatMulIntegerToFloat" for n in nodes) == 1  # one LSTM layer's gates
    frontend_ops = {n.op_type for n in nodes if any(i.startswith("dft.") for i in n.input)}
    assert "MatMul" in frontend_ops and frontend_ops <= {"Mul", "MatMul", "Gemm"}  # float32 window, DFT, mels
    probs, _ = session.run(None, {"audio": np.zeros((2, 160), np.float32), "state": np.zeros((2, info.state_size), np.float32)})
    assert probs.shape == (2, 12)


def test_bundled_default_model_conforms():
    path = resources.files("firstspike.server") / "models" / "default.onnx"
    session, info = open_step_session(str(path))
    assert info.model_name.startswith("firstspike-sc12") and len(info.labels) == 12
    assert set(info.firing_labels) <= set(info.labels) and "_silence_" not in info.firing_labels
    probs, state = session.run(None, {"audio": np.zeros((1, info.samples_per_call), np.float32),
                                      "state": np.zeros((1, info.state_size), np.float32)})
    assert probs.shape == (1, 12) and state.shape == (1, info.state_size)


def test_export_rejects_bad_options(checkpoint, tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    assert main(["export", str(checkpoint), "-o", out, "--hops-per-call", "0"]) == 2
    assert "--hops-per-call must be at least 1" in capsys.readouterr().err
    assert main(["export", str(checkpoint), "-o", out, "--threshold", "1.5"]) == 2
    assert "threshold must lie in (0, 1]" in capsys.readouterr().err
    assert main(["export", str(checkpoint), "-o", out, "--opset", "13"]) == 2
    assert "opset must be at least 17" in capsys.readouterr().err
