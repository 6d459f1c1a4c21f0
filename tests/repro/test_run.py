"""Tiny real training runs through firstspike's rank-coding code, the CLI and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.repro import report, run
from bench.repro.run import RunConfig

torch.set_num_threads(1)


def tiny(task: str, mode: str, **overrides) -> RunConfig:
    sizes = {"hidden": 16, "batch": 64, "examples": 6400, "epochs": 6, "eval_examples": 1000, "bins": 4, "lr": 1e-2}
    sizes.update(overrides)
    return RunConfig(task=task, mode=mode, **sizes)


@pytest.mark.parametrize(("task", "chance", "bar"), [("seq5", None, 0.72), ("digits", 0.1, 0.6)])
def test_tiny_rc_run_beats_chance(task: str, chance: float | None, bar: float) -> None:
    config = tiny(task, "rc", chunk=1 if task == "digits" else 8, examples=12800 if task == "seq5" else 6400)
    data = run.load_task(config)
    if chance is None:  # seq5: the majority class
        chance = max(data.test.y.mean(), 1 - data.test.y.mean())
    result = run.run_one(config, progress=False, data=data)
    at = result["eval"]["at_theta"]
    assert at["accuracy"] > max(bar, chance + 0.1), at
    assert 1 <= at["mean_spike_step"] <= data.steps
    assert 0 < result["train"]["train_frames_computed"] <= result["train"]["train_frames_full"]


def test_noise_rc_beats_chance_on_fewer_frames_than_eos() -> None:
    rc = run.run_one(tiny("noise", "rc", theta=0.8), progress=False)  # a low θ spikes early even in a tiny run
    eos = run.run_one(tiny("noise", "eos", examples=1280), progress=False)
    assert rc["eval"]["at_theta"]["accuracy"] > 0.85  # chance: 0.5
    assert eos["train"]["train_frame_fraction"] == 1.0
    assert rc["train"]["train_frame_fraction"] < 0.9
    # the EOS read-out at a lower θ cannot decide later than at a higher one
    sweep = eos["eval"]["theta_sweep"]
    assert all(a["mean_spike_step"] <= b["mean_spike_step"] for a, b in zip(sweep, sweep[1:]))


def test_cli_writes_results_and_report_builds_tables_and_plots(tmp_path: Path) -> None:
    out = tmp_path / "results"
    code = run.main(["seq5", "--mode", "rc", "eos", "--examples", "1280", "--hidden", "8", "--eval-examples", "500",
                     "--out", str(out), "--no-progress"])
    assert code == 0
    files = sorted(p.name for p in out.glob("*.json"))
    assert files == ["seq5-eos-beta0-seed0.json", "seq5-rc-beta0-seed0.json"]
    saved = json.loads((out / files[1]).read_text())
    assert saved["config"]["mode"] == "rc" and "positives" in saved["eval"]["at_theta"]
    doc = tmp_path / "reproduction.md"
    doc.write_text("# Title\n\nkept text\n\n<!-- results:begin -->\nold\n<!-- results:end -->\n\ntail text\n")
    assert report.main(["--results", str(out), "--doc", str(doc), "--img", str(tmp_path / "img")]) == 0
    text = doc.read_text()
    assert "kept text" in text and "tail text" in text and "old" not in text
    assert "### Sequence of 5" in text and "| RC |" in text and "| EOS |" in text
    assert (tmp_path / "img" / "seq5_spike_vs_ideal.png").stat().st_size > 1000


def test_paper_scale_uses_the_released_sizes() -> None:
    parser = __import__("argparse").ArgumentParser()
    run.add_arguments(parser)
    (config,) = run.configs_from_args(parser.parse_args(["noise", "--mode", "rc", "--paper-scale"]))
    assert (config.hidden, config.lr, config.batch, config.examples, config.schedule) == (125, 3e-4, 128, 2_000_000, "constant")


def test_bad_input_gets_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["noise", "--theta", "0.3", "--out", str(tmp_path)]) == 2
    assert "theta" in capsys.readouterr().err
    assert run.main(["digits", "--mnist-dir", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown task"):
        RunConfig(task="mnist", mode="rc")


def test_binary_softmax_spike_matches_the_released_sigmoid_rule() -> None:
    """Softmax over 2 classes, both firing at θ: spike iff sigmoid(z1 - z0) > θ or < 1 - θ (released rule)."""
    from firstspike.model.rank_coding import first_spike

    logits = torch.from_numpy(np.random.default_rng(0).normal(0, 3, size=(200, 10, 2))).float()
    t_star, spiked = first_spike(torch.softmax(logits, -1), torch.ones(2, dtype=torch.bool), 0.95)
    p = torch.sigmoid(logits[..., 1] - logits[..., 0])
    crossed = (p >= 0.95) | (p <= 0.05)
    assert torch.equal(spiked, crossed.any(1))
    assert torch.equal(t_star[spiked], crossed.int().argmax(1)[spiked])
