"""A tiny synthetic corpus (the data engineer's `tiny` preset) shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_train_corpus(tmp_path_factory) -> Path:
    from firstspike.model.data.synth import build_corpus

    root = tmp_path_factory.mktemp("tiny_train") / "corpus"
    build_corpus(root, "tiny", seed=0, workers=2, progress=False)
    return root
