"""Checkpoint round trip and the errors a user sees for bad files."""

import pytest
import torch

from firstspike.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.model.labels import task_labels


def _model():
    labels, firing = task_labels("sc12")
    torch.manual_seed(3)
    model = KeywordSpotter(ModelConfig(labels, firing, hidden=16, threshold=0.8))
    model.set_normalisation(torch.randn(40), torch.rand(40) + 0.5)
    return model


def test_round_trip(tmp_path):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    path = save_checkpoint(tmp_path / "run" / "best.pt", model, "rc", {"epochs": 2, "task": "sc12"},
                           optimizer=opt.state_dict(), epoch=2)
    loaded, data = load_checkpoint(path)
    assert data["mode"] == "rc" and data["threshold"] == 0.8 and data["epoch"] == 2
    assert data["labels"] == model.config.labels and data["train_summary"]["task"] == "sc12"
    assert loaded.config == model.config and not loaded.training
    audio = torch.randn(1, 3200) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(loaded(audio), model(audio))
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a firstspike checkpoint") as caught:
        load_checkpoint(junk)
    assert "weights_only" not in str(caught.value)  # torch's advice to its own users is left out
    exported = tmp_path / "model.onnx"
    exported.write_bytes(b"\x08\x08\x12\x07pytorch")  # how every ONNX file starts: field 1, ir_version
    with pytest.raises(CheckpointError, match="is an ONNX model, not a firstspike checkpoint: this needs the .pt"):
        load_checkpoint(exported)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="is not a firstspike checkpoint"):
        load_checkpoint(other)
    good = save_checkpoint(tmp_path / "good.pt", _model(), "eos", {})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="is not a firstspike checkpoint"):
        load_checkpoint(truncated)
    data = torch.load(good, weights_only=True)
    data["config"]["hidden"] = 32
    torch.save(data, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match its model config"):
        load_checkpoint(tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="mode"):
        save_checkpoint(tmp_path / "x.pt", _model(), "fast", {})
