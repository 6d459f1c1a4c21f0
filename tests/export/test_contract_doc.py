"""The numpy + onnxruntime examples in docs/onnx-contract.md run as written: the one-hop loop against the
bundled model, the multi-hop one against the bundled checkpoint exported with `--graph multi-hop`."""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import soundfile as sf

DOC = Path(__file__).resolve().parents[2] / "docs" / "onnx-contract.md"


CHECKPOINT = DOC.parents[1] / "models" / "default" / "checkpoint.pt"
RESULT = r"(\w+ after \d+ ms|no spike; at the end: \w+)\n"


def _example(model_file: str) -> str:
    """The doc's python block that opens `model_file`."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return next(block for block in blocks if f'InferenceSession("{model_file}"' in block)


def _run(code: str, capsys) -> str:
    exec(compile(code, str(DOC), "exec"), {})
    return capsys.readouterr().out


def test_doc_examples_stream_a_wav(tmp_path, monkeypatch, capsys):
    from firstspike.cli import main

    shutil.copy(resources.files("firstspike.server") / "models" / "default.onnx", tmp_path / "default.onnx")
    assert main(["export", str(CHECKPOINT), "-o", str(tmp_path / "multi-hop.onnx"), "--graph", "multi-hop"]) == 0
    audio, rate = sf.read(DOC.parents[1] / "samples" / "yes.wav", dtype="float32")
    sf.write(tmp_path / "yes.wav", audio[: len(audio) - 1234], rate)  # not a whole number of 100 ms calls
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    one_hop = _run(_example("default.onnx"), capsys)
    assert re.fullmatch(RESULT, one_hop) and one_hop.startswith("yes after"), one_hop
    assert _run(_example("multi-hop.onnx"), capsys) == one_hop  # the same model, the same answer
