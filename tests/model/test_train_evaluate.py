"""End to end on a real (tiny, synthetic) corpus: `firstspike train` both modes, resume, `evaluate`."""

from __future__ import annotations

import json

import pytest
import torch

from firstspike.cli import main
from firstspike.model.checkpoint import load_checkpoint

SMALL = ["--hidden", "16", "--batch-size", "16", "--quiet", "--workers", "1"]


@pytest.fixture(scope="module")
def runs(tiny_train_corpus, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    for mode in ("rc", "eos"):
        assert main(["train", "--corpus", str(tiny_train_corpus), "--mode", mode, "--out", str(base / mode),
                     "--epochs", "2", "--theta", "0.5", *SMALL]) == 0
    return base


def test_train_writes_run_folder(runs):
    for mode in ("rc", "eos"):
        run = runs / mode
        assert {p.name for p in run.iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl", "config.json"}
        lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["epoch"] for m in lines] == [1, 2]
        for key in ("train_loss", "val_acc_first_spike", "val_acc_end", "train_frames_fraction",
                    "train_mean_rel_t", "epoch_train_s"):
            assert all(isinstance(m[key], float) for m in lines), key
        model, ckpt = load_checkpoint(run / "best.pt")
        assert ckpt["mode"] == mode and ckpt["train_summary"]["task"] == "sc12"
        assert model.feat_std.min() > 0 and model.feat_mean.abs().sum() > 0  # normalisation from train split
    eos = [json.loads(l) for l in (runs / "eos" / "metrics.jsonl").read_text().splitlines()]
    assert all(m["train_frames_fraction"] >= 1.0 for m in eos)  # eos runs every sequence to its end


def test_resume_continues(runs, tiny_train_corpus):
    """`--resume` goes on where the run stopped, at the run's own size without restating `--hidden`."""
    run = runs / "rc"
    assert main(["train", "--corpus", str(tiny_train_corpus), "--out", str(run), "--epochs", "3", "--theta", "0.5",
                 "--resume", "--batch-size", "16", "--quiet", "--workers", "1"]) == 0
    epochs = [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert load_checkpoint(run / "last.pt")[0].config.hidden == 16


def test_init_fine_tunes_another_runs_weights_in_either_mode(runs, tiny_train_corpus, tmp_path, capsys):
    """`--init` starts from a checkpoint (here EOS weights, trained on in RC mode), shape and normalisation included."""
    init = runs / "eos" / "best.pt"
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", "--batch-size", "16",
              "--quiet", "--workers", "1", "--init", str(init)]
    # A learning rate of almost nothing leaves the weights where --init put them: proof that they were loaded.
    assert main([*common, "--mode", "rc", "--lr", "1e-12", "--out", str(tmp_path / "ft")]) == 0
    start, _ = load_checkpoint(init)
    tuned, ckpt = load_checkpoint(tmp_path / "ft" / "last.pt")
    assert tuned.config.hidden == 16  # taken from the checkpoint, not the default 128
    assert ckpt["mode"] == "rc" and ckpt["train_summary"]["init"] == str(init)
    for name, value in start.state_dict().items():
        assert torch.allclose(tuned.state_dict()[name], value, atol=1e-6), name
    # A shape that differs from the checkpoint's, or a checkpoint that is not there, is a clear error.
    assert main([*common, "--hidden", "32", "--out", str(tmp_path / "wide")]) == 2
    assert "differs from this run in hidden (16 there, 32 here)" in capsys.readouterr().err
    assert main([*common[:-1], str(tmp_path / "missing.pt"), "--out", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "--init:" in err and "does not exist" in err


def test_feature_augmentation_trains_and_is_recorded(tiny_train_corpus, tmp_path):
    """The opt-in speaker warp and channel EQ change what the model learns, and the run says they were on."""
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    assert main([*common, "--out", str(tmp_path / "plain")]) == 0
    assert main([*common, "--out", str(tmp_path / "warped"), "--warp", "0.1", "--gain-db", "6", "--eq-db", "6"]) == 0
    config = json.loads((tmp_path / "warped" / "config.json").read_text())["train"]
    assert (config["warp"], config["gain_db"], config["eq_db"]) == (0.1, 6.0, 6.0)
    plain = [json.loads(l) for l in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()]
    warped = [json.loads(l) for l in (tmp_path / "warped" / "metrics.jsonl").read_text().splitlines()]
    assert plain[0]["train_loss"] != warped[0]["train_loss"]


def test_step_averaged_entropy_trains_and_is_recorded(tiny_train_corpus, tmp_path):
    """`--entropy mean` reads β's entropy over every step up to t*, a different loss from the t* reading."""
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", "--beta", "0.5", *SMALL]
    assert main([*common, "--out", str(tmp_path / "spike")]) == 0
    assert main([*common, "--out", str(tmp_path / "mean"), "--entropy", "mean"]) == 0
    assert json.loads((tmp_path / "mean" / "config.json").read_text())["summary"]["entropy"] == "mean"
    spike, mean = ([json.loads(l) for l in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
                   for run in ("spike", "mean"))
    assert spike[0]["train_loss"] != mean[0]["train_loss"]


def test_negative_beta_rewards_confidence_and_trains(tiny_train_corpus, tmp_path, capsys):
    """β < 0 penalises entropy (earlier spikes); both readings take it, and a NaN β is refused."""
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    assert main([*common, "--beta", "-0.5", "--entropy", "mean", "--out", str(tmp_path / "neg")]) == 0
    assert json.loads((tmp_path / "neg" / "config.json").read_text())["summary"]["beta"] == -0.5
    assert main([*common, "--beta", "nan", "--out", str(tmp_path / "nan")]) == 2
    assert "finite beta" in capsys.readouterr().err


def test_impossible_warp_is_a_clear_error(tiny_train_corpus, tmp_path, capsys):
    assert main(["train", "--corpus", str(tiny_train_corpus), "--out", str(tmp_path / "r"), "--warp", "1", *SMALL]) == 2
    assert "0 <= warp < 0.5" in capsys.readouterr().err


def test_dropout_trains_is_recorded_and_bounded(tiny_train_corpus, tmp_path, capsys):
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    assert main([*common, "--dropout", "0.25", "--out", str(tmp_path / "drop")]) == 0
    assert json.loads((tmp_path / "drop" / "config.json").read_text())["train"]["dropout"] == 0.25
    assert main([*common, "--dropout", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "dropout must lie in [0, 1)" in capsys.readouterr().err


def test_extra_training_corpus_joins_the_training_split_only(tiny_train_corpus, tmp_path, capsys):
    from dataclasses import replace

    from firstspike.model.data.corpus import open_corpus
    from firstspike.model.data.presets import PRESETS
    from firstspike.model.data.synth import build_corpus

    # The same voices and words with nearly every word in training: it says the main corpus's held-out words.
    other = tmp_path / "mostly-train"
    build_corpus(other, replace(PRESETS["tiny"], name="mostly-train", split_shares=(0.9, 0.05, 0.05)), seed=0,
                 workers=2, progress=False)
    main_corpus, extra = open_corpus(tiny_train_corpus), open_corpus(other)
    held_words = ({r.word for s in ("val", "test") for r in main_corpus.rows(s) if r.label == "_unknown_"}
                  - {r.word for r in main_corpus.rows("train")})
    kept = [r for r in extra.rows("train") if not (r.label == "_unknown_" and r.word in held_words)]
    assert 0 < len(kept) < len(extra.rows("train"))  # some held-out unknown words were left out
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    assert main([*common, "--extra-train", str(other), "--out", str(tmp_path / "both")]) == 0
    summary = json.loads((tmp_path / "both" / "config.json").read_text())["summary"]
    assert summary["train_clips"] == len(main_corpus.rows("train")) + len(kept)
    assert summary["val_clips"] == len(main_corpus.rows("val"))

    # A corpus that trains on a voice the main corpus holds out is refused, naming the voice.
    leaky = replace(PRESETS["tiny"], name="leaky", flite={"train": ("awb",), "val": ("kal",), "test": ("rms",)})
    build_corpus(tmp_path / "leaky", leaky, seed=0, workers=2, progress=False)
    assert main([*common, "--extra-train", str(tmp_path / "leaky"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "holds out" in err and "flite:awb" in err


def test_engine_balanced_selection_picks_best_by_the_per_engine_mean(tiny_train_corpus, tmp_path, capsys):
    """`--select engines` keeps the epoch whose per-engine mean validation accuracy is highest, and a resume keeps it."""
    from firstspike.model.data.corpus import open_corpus

    run = tmp_path / "engines"
    common = ["train", "--corpus", str(tiny_train_corpus), "--theta", "0.5", "--out", str(run), *SMALL]
    assert main([*common, "--epochs", "3", "--select", "engines", "--patience", "3"]) == 0
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    val_engines = {r.engine for r in open_corpus(tiny_train_corpus).rows("val")}
    assert len(val_engines) >= 2  # otherwise the mean would be the overall accuracy and prove nothing
    for m in lines:
        by_engine = m["val_acc_first_spike_by_engine"]
        assert set(by_engine) == val_engines
        assert m["val_acc_first_spike_engine_mean"] == pytest.approx(sum(by_engine.values()) / len(by_engine))
    best_epoch = max(lines, key=lambda m: m["val_acc_first_spike_engine_mean"])["epoch"]  # first of any tie
    _, best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == best_epoch and best["train_config"]["select"] == "engines"
    assert best["train_summary"]["best"] == {"val_acc_first_spike_engine_mean": best["best_metric"]}

    # Resuming without --select keeps the run's; asking for the other one is refused, not silently mixed.
    assert main([*common, "--epochs", "4", "--resume", "--select", "clips"]) == 2
    assert "selects on --select engines" in capsys.readouterr().err
    assert main([*common, "--epochs", "4", "--resume"]) == 0
    assert load_checkpoint(run / "last.pt")[1]["train_config"]["select"] == "engines"


def test_keyword_selection_picks_best_by_keyword_clips_alone(tiny_train_corpus, tmp_path):
    """`--select keywords` keeps the epoch best on keyword clips; its figure is the evaluator's keyword accuracy."""
    run, report = tmp_path / "keywords", tmp_path / "val.json"
    assert main(["train", "--corpus", str(tiny_train_corpus), "--theta", "0.5", "--out", str(run), *SMALL,
                 "--epochs", "3", "--select", "keywords", "--patience", "3"]) == 0
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    best_line = max(lines, key=lambda m: m["val_acc_first_spike_keywords"])  # first of any tie
    _, best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == best_line["epoch"] and best["train_config"]["select"] == "keywords"
    assert main(["evaluate", str(run / "best.pt"), "--corpus", str(tiny_train_corpus), "--split", "val",
                 "--theta", "0.5", "--out", str(report), "--quiet"]) == 0
    measured = json.loads(report.read_text())["keyword_accuracy"]
    assert best_line["val_acc_first_spike_keywords"] == pytest.approx(measured, abs=1e-6)


def test_refuses_to_overwrite_a_run(runs, tiny_train_corpus, capsys):
    assert main(["train", "--corpus", str(tiny_train_corpus), "--out", str(runs / "eos"), *SMALL]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_bad_corpus_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "r"), *SMALL]) == 2
    assert "is empty" in capsys.readouterr().err


def test_evaluate_report_and_plot(runs, tiny_train_corpus, tmp_path):
    out, plot = tmp_path / "report.json", tmp_path / "curve.png"
    assert main(["evaluate", str(runs / "rc" / "best.pt"), "--corpus", str(tiny_train_corpus), "--out", str(out),
                 "--plot", str(plot), "--compare", str(runs / "eos" / "best.pt"), "--quiet"]) == 0
    report = json.loads(out.read_text())
    assert report["mode"] == "rc" and report["compare"]["mode"] == "eos"
    assert 0.0 <= report["accuracy_first_spike"] <= 1.0 and 0.0 <= report["accuracy_end"] <= 1.0
    assert set(report["false_fires"]) == {"_silence_", "_unknown_"}
    confusion = report["confusion"]["rows_true_cols_predicted"]
    assert sum(map(sum, confusion)) == report["n"]
    assert [p["theta"] for p in report["theta_sweep"]] == sorted(p["theta"] for p in report["theta_sweep"])
    assert {"by_engine", "by_voice", "stream", "decision_ms", "decision_minus_onset_ms",
            "keyword_decision_minus_offset_ms", "keyword_decided_before_word_end_share"} <= set(report)
    assert all("keyword_decided_before_word_end_share" in point for point in report["theta_sweep"])
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_rejects_a_non_checkpoint(tiny_train_corpus, tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_text("nope")
    assert main(["evaluate", str(junk), "--corpus", str(tiny_train_corpus), "--out", str(tmp_path / "r.json")]) == 2
    assert "is not a firstspike checkpoint" in capsys.readouterr().err


def test_evaluate_reports_the_live_view(runs, tiny_train_corpus, tmp_path):
    out = tmp_path / "report.json"
    assert main(["evaluate", str(runs / "rc" / "best.pt"), "--corpus", str(tiny_train_corpus), "--out", str(out),
                 "--live-tail", "0.5", "--quiet"]) == 0
    report = json.loads(out.read_text())
    live = report["live"]
    assert live["tail_s"] == 0.5 and live["n"] > 0 and live["theta"] == report["theta"]
    for point in [live, *live["theta_sweep"]]:
        assert abs(point["right"] + point["wrong"] + point["no_decision"] - 1.0) < 1e-9
    detected = [p["right"] + p["wrong"] for p in live["theta_sweep"]]
    assert detected == sorted(detected, reverse=True)  # a higher θ never detects more
    floors = live["endpointed_by_min_score"]
    assert [f["min_score"] for f in floors] == sorted(f["min_score"] for f in floors)
    for looser, stricter in zip(floors, floors[1:]):  # a higher floor never adds a command
        assert stricter["right"] <= looser["right"] and stricter["wrong"] <= looser["wrong"]
        assert stricter["unknown_commands"] <= looser["unknown_commands"]


def test_evaluate_without_the_live_view_and_a_bad_tail(runs, tiny_train_corpus, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["evaluate", str(runs / "rc" / "best.pt"), "--corpus", str(tiny_train_corpus), "--out", str(out),
                 "--live-tail", "0", "--quiet"]) == 0
    assert "live" not in json.loads(out.read_text())
    assert main(["evaluate", str(runs / "rc" / "best.pt"), "--corpus", str(tiny_train_corpus), "--out", str(out),
                 "--live-tail", "-1"]) == 2
    assert "--live-tail must lie in [0, 60]" in capsys.readouterr().err


def test_mode_benchmark_compares_chunks_side_by_side(runs, tiny_train_corpus, capsys):
    from firstspike.model.mode_benchmark import main as mode_benchmark

    args = [str(runs / "rc" / "best.pt"), "--corpus", str(tiny_train_corpus), "--theta", "0.5"]
    assert mode_benchmark([*args, "--repeats", "2", "--chunk", "4", "16"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    assert set(report["chunks"]) == {"4", "16"} and report["repeats"] == 2
    assert out.count("chunk   4  rc") == out.count("chunk  16 eos") == 2  # both chunks, both modes, every repeat
    for summary in report["chunks"].values():
        assert summary["eos"]["frames_fraction"] >= 1.0  # eos steps every sequence to its end
        assert summary["rc"]["frames_fraction"] <= summary["eos"]["frames_fraction"]
    assert mode_benchmark([str(tiny_train_corpus / "manifest.csv"), "--corpus", str(tiny_train_corpus)]) == 2
    assert "mode_benchmark:" in capsys.readouterr().err


def test_rc_eos_tables_of_bench_read_evaluate_reports(runs, tiny_train_corpus, tmp_path):
    """bench/kws_word_end.py and bench/kws_live.py (docs/benchmarks.md) turn reports into one row per θ."""
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    reports = {}
    for mode in ("rc", "eos"):
        reports[mode] = tmp_path / f"{mode}.json"
        assert main(["evaluate", str(runs / mode / "best.pt"), "--corpus", str(tiny_train_corpus),
                     "--out", str(reports[mode]), "--live-tail", "0.5", "--quiet"]) == 0
    thetas = len(json.loads(reports["rc"].read_text())["theta_sweep"])
    for script, column in (("kws_word_end.py", "RC median decision − word end"), ("kws_live.py", "RC right / wrong")):
        result = subprocess.run([sys.executable, str(bench / script), "--rc", str(reports["rc"]),
                                 "--eos", str(reports["eos"])], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.splitlines()
        assert column in lines[1] and len(lines) == 3 + thetas
    result = subprocess.run([sys.executable, str(bench / "at_false_fires.py"), "--rate", "0.5", "--group", "RC",
                             str(reports["rc"]), "--group", "EOS", str(reports["eos"])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("RC: where") and "\nEOS: where" in result.stdout


def test_equal_false_fire_reading_interpolates_between_thetas():
    """bench/at_false_fires.py reads a θ sweep where the `_unknown_` false fires cross the rate."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "at_false_fires.py"
    spec = importlib.util.spec_from_file_location("at_false_fires", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    point = lambda theta, fires, acc, ms: {"theta": theta, "false_fire_rate": {"_unknown_": fires},  # noqa: E731
                                           "keyword_accuracy": acc, "keyword_decision_ms_mean": ms}
    sweep = [point(0.95, 0.02, 0.74, 990.0), point(0.9, 0.04, 0.75, 930.0), point(0.8, 0.08, 0.76, 850.0)]
    reading = module.at_rate(sweep, 0.03)
    assert reading["theta"] == pytest.approx(0.925)
    assert reading["keyword_accuracy"] == pytest.approx(0.745)
    assert reading["keyword_decision_ms_mean"] == pytest.approx(960.0)
    assert module.at_rate(sweep, 0.01) is None  # the sweep never fires that rarely



def test_pcen_trains_evaluates_and_a_fine_tune_keeps_its_frontend(runs, tiny_train_corpus, tmp_path, capsys):
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    assert main([*common, "--pcen", "--out", str(tmp_path / "pcen")]) == 0
    model, _ = load_checkpoint(tmp_path / "pcen" / "best.pt")
    assert model.config.pcen and model.pcen is not None
    assert 0 < float(model.feat_mean.mean()) < 3  # statistics of PCEN features, not of log-mels (about -6)
    assert main(["evaluate", str(tmp_path / "pcen" / "best.pt"), "--corpus", str(tiny_train_corpus), "--live-tail", "0.2",
                 "--quiet", "--out", str(tmp_path / "pcen.json")]) == 0
    assert json.loads((tmp_path / "pcen.json").read_text())["live"]["n"] > 0
    # --init keeps the checkpoint's frontend when --pcen is left out, and refuses to change it
    assert main([*common, "--init", str(tmp_path / "pcen" / "best.pt"), "--out", str(tmp_path / "ft")]) == 0
    assert load_checkpoint(tmp_path / "ft" / "best.pt")[0].config.pcen
    capsys.readouterr()
    assert main([*common, "--pcen", "--init", str(runs / "rc" / "best.pt"), "--out", str(tmp_path / "bad")]) == 2
    assert "pcen (False there, True here)" in capsys.readouterr().err


def test_keep_logmel_trains_and_exports_and_a_fine_tune_keeps_it(tiny_train_corpus, tmp_path, capsys):
    common = ["train", "--corpus", str(tiny_train_corpus), "--epochs", "1", "--theta", "0.5", *SMALL]
    capsys.readouterr()
    assert main([*common, "--keep-logmel", "--out", str(tmp_path / "alone")]) == 2  # it needs --pcen
    assert "needs --pcen" in capsys.readouterr().err
    assert main([*common, "--pcen", "--keep-logmel", "--out", str(tmp_path / "both")]) == 0
    model, _ = load_checkpoint(tmp_path / "both" / "best.pt")
    assert model.config.keep_logmel and model.classifier.lstm.input_size == 2 * model.config.n_mels
    # statistics of the log-mels (about -6), then of the PCEN features (0-3)
    assert float(model.feat_mean[:40].mean()) < -2 and 0 < float(model.feat_mean[40:].mean()) < 3
    assert main(["export", str(tmp_path / "both" / "best.pt"), "-o", str(tmp_path / "both.onnx")]) == 0
    assert main([*common, "--init", str(tmp_path / "both" / "best.pt"), "--out", str(tmp_path / "ft")]) == 0
    assert load_checkpoint(tmp_path / "ft" / "best.pt")[0].config.keep_logmel
