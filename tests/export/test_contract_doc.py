"""The numpy + onnxruntime example in docs/onnx-contract.md runs as written against the bundled model."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf

DOC = Path(__file__).resolve().parents[2] / "docs" / "onnx-contract.md"


def test_doc_example_streams_a_wav(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    shutil.copy(resources.files("firstspike.server") / "models" / "default.onnx", tmp_path / "default.onnx")
    t = np.arange(16000) / 16000
    sf.write(tmp_path / "yes.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert re.fullmatch(r"(\w+ after \d+ ms|no spike; at the end: \w+)\n", out), out
