"""verify-onnx streams real audio through onnxruntime hop by hop and agrees with PyTorch."""

from __future__ import annotations

import json

import pytest

from firstspike.cli import main
from firstspike.model.checkpoint import save_checkpoint

from export_fixtures import spiky_model


def _verify(model, checkpoint, corpus, tmp_path, *extra) -> tuple[int, dict]:
    report = tmp_path / "report.json"
    code = main(["verify-onnx", str(model), "--checkpoint", str(checkpoint), "--corpus", str(corpus),
                 "--split", "test", "--json", str(report), *extra])
    return code, json.loads(report.read_text()) if report.exists() else {}


def test_verify_passes_and_reports_counts(exported, checkpoint, corpus, tmp_path, capsys):
    code, report = _verify(exported, checkpoint, corpus, tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert report["passed"] and report["checker"] == "ok" and report["opset"] == 17
    assert report["clips"] == 12 and report["frames"] > 1000
    assert report["max_abs_diff"] <= 1e-4 and report["frames_over_tolerance"] == 0
    assert report["decisions_agree"] == 12 and report["labelled"] == 12
    assert 0 < report["spikes_torch"] == report["spikes_onnx"]  # the comparison covers real spikes
    assert "PASS" in out and "12/12" in out


def test_limit_and_explicit_threshold(exported, checkpoint, corpus, tmp_path):
    code, report = _verify(exported, checkpoint, corpus, tmp_path, "--limit", "3", "--threshold", "0.99",
                           "--batch-size", "2")
    assert code == 0 and report["clips"] == 3 and report["threshold"] == 0.99


@pytest.mark.parametrize("graph,hops,layers,head", [("lstm-op", "1", 2, "softmax"), ("fused", "3", 2, "softmax"),
                                                    ("fused", "1", 1, "sigmoid")])
def test_other_graphs_verify(graph, hops, layers, head, corpus, tmp_path):
    model = spiky_model(hidden=16, layers=layers, seed=1, head=head)
    ckpt = save_checkpoint(tmp_path / "other.pt", model, "eos", {})
    onnx_path = tmp_path / f"{graph}.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path), "--graph", graph, "--hops-per-call", hops]) == 0
    code, report = _verify(onnx_path, ckpt, corpus, tmp_path)
    assert code == 0 and report["hops_per_call"] == int(hops) and report["decisions_agree"] == report["clips"]


def test_refuses_a_model_from_another_checkpoint(exported, corpus, tmp_path, capsys):
    other = save_checkpoint(tmp_path / "other.pt", spiky_model(hidden=8), "rc", {})
    code, _ = _verify(exported, other, corpus, tmp_path)
    assert code == 2 and "was not exported from" in capsys.readouterr().err


def test_bad_corpus_is_a_clear_error(exported, checkpoint, tmp_path, capsys):
    code, _ = _verify(exported, checkpoint, tmp_path, tmp_path)
    assert code == 2 and "no manifest.csv" in capsys.readouterr().err


def test_an_int8_graph_is_judged_by_accuracy(checkpoint, corpus, tmp_path, capsys):
    """`--quantize` output cannot match float32 to 1e-4; verify-onnx says so and judges its accuracy."""
    quantized = tmp_path / "int8.onnx"
    assert main(["export", str(checkpoint), "-o", str(quantized), "--quantize"]) == 0
    capsys.readouterr()
    code, report = _verify(quantized, checkpoint, corpus, tmp_path)
    out = capsys.readouterr().out
    assert report["int8"] and "judged by first-spike accuracy" in out
    assert report["labelled"] == 12 and report["passed"] == (report["accuracy_loss"] <= 0.01)
    assert code == (0 if report["passed"] else 1)


def test_int8_verdict_rules():
    from firstspike.export.parity import ParityReport

    def report(correct_torch, correct_onnx, labelled=200):
        return ParityReport(clips=200, frames=9000, frames_over_tolerance=500, decisions_agree=150, labelled=labelled,
                            correct_torch=correct_torch, correct_onnx=correct_onnx, int8=True)

    assert report(180, 179).passed and report(180, 185).passed  # half a point lost; a gain
    assert not report(180, 177).passed  # 1.5 points lost
    assert not report(0, 0, labelled=0).passed and "cannot be judged" in report(0, 0, labelled=0).to_text()
    float_report = report(180, 180)
    float_report.int8 = False
    assert not float_report.passed  # frames over tolerance fail a float32 graph
