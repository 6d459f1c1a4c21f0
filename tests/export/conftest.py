"""Session fixtures for the export tests (helpers live in export_fixtures.py, importable by name)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from export_fixtures import build_corpus, spiky_model
from firstspike.model.checkpoint import save_checkpoint


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    return build_corpus(tmp_path_factory.mktemp("corpus"), tmp_path_factory.mktemp("tts"))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "spiky" / "best.pt"
    save_checkpoint(path, spiky_model(), "rc", {"corpus": "espeak test words", "task": "sc12", "epochs": 0})
    return path


@pytest.fixture(scope="session")
def exported(checkpoint, tmp_path_factory) -> Path:
    from firstspike.cli import main

    out = tmp_path_factory.mktemp("onnx") / "spiky.onnx"
    assert main(["export", str(checkpoint), "-o", str(out), "--model-name", "spiky", "--model-version", "3"]) == 0
    return out
