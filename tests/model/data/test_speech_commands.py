"""Speech Commands v0.02 layout: splits from the lists, silence crops, VAD onsets, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from firstspike.cli import main
from firstspike.model.checkpoint import load_checkpoint
from firstspike.model.data.audio import write_wav
from firstspike.model.data.corpus import CorpusError, open_corpus


@pytest.fixture()
def sc_copy(speech_commands_dir, tmp_path):
    return shutil.copytree(speech_commands_dir, tmp_path / "sc")


def test_sc12_and_sc35(speech_commands_dir, sc_layout, tmp_path):
    words_, speakers, word_at_ms = sc_layout["words"], sc_layout["speakers"], sc_layout["word_at_ms"]
    cache = tmp_path / "cache"
    sc12 = open_corpus(speech_commands_dir, "sc12", cache_dir=cache)
    assert sc12.labels[-2:] == ["_silence_", "_unknown_"] and len(sc12.labels) == 12
    words = {s: [r for r in sc12.rows(s) if r.kind == "clip"] for s in ("train", "val", "test")}
    assert {r.voice for r in words["val"]} == {speakers[2]}
    assert {r.voice for r in words["test"]} == {speakers[3]}
    assert len(words["train"]) == 2 * len(words_)
    assert {r.label for r in words["train"]} == {"yes", "no", "up", "_unknown_"}  # marvin is unknown in sc12
    for row in words["train"] + words["val"] + words["test"]:
        assert row.duration_ms == 1000.0 and row.engine == "human"
        assert abs(row.onset_ms - word_at_ms) <= 40, row
        assert word_at_ms + 150 <= row.offset_ms <= 1000
    sc35 = open_corpus(speech_commands_dir, "sc35", cache_dir=cache)
    assert {r.label for r in sc35.rows("train") if r.kind == "clip"} == set(words_)
    assert "sc35" in sc35.summary() and "\n" not in sc35.summary()


def test_silence_crops_are_split_disjoint_and_deterministic(speech_commands_dir, tmp_path):
    corpus = open_corpus(speech_commands_dir, "sc12", cache_dir=tmp_path / "a")
    silence = {s: [r for r in corpus.rows(s) if r.label == "_silence_"] for s in ("train", "val", "test")}
    # two 10 s files: train gets 8 s each (15 crops at 0.5 s hops), val and test 1 s each (1 crop)
    assert [len(silence[s]) for s in ("train", "val", "test")] == [30, 2, 2]
    assert all(r.kind == "silence" and r.onset_ms is None and r.duration_ms == 1000.0 for r in silence["train"])
    again = open_corpus(speech_commands_dir, "sc12", cache_dir=tmp_path / "b")
    for a, b in zip(silence["train"], [r for r in again.rows("train") if r.label == "_silence_"]):
        assert open(a.path, "rb").read() == open(b.path, "rb").read()


def test_vad_is_cached(speech_commands_dir, tmp_path):
    cache = tmp_path / "cache"
    open_corpus(speech_commands_dir, "sc12", cache_dir=cache).rows("train")
    stamp = (cache / "vad.csv").stat().st_mtime_ns
    rows = open_corpus(speech_commands_dir, "sc12", cache_dir=cache).rows("train")
    assert (cache / "vad.csv").stat().st_mtime_ns == stamp
    assert all(r.onset_ms is not None for r in rows if r.kind == "clip")


def test_missing_list_file(sc_copy):
    (sc_copy / "testing_list.txt").unlink()
    with pytest.raises(CorpusError, match="missing testing_list.txt"):
        open_corpus(sc_copy)


def test_list_names_a_missing_file(sc_copy, sc_layout):
    (sc_copy / "yes" / f"{sc_layout['speakers'][3]}_nohash_0.wav").unlink()
    with pytest.raises(CorpusError, match="named in the list files are missing"):
        open_corpus(sc_copy)


def test_no_background_noise(sc_copy):
    shutil.rmtree(sc_copy / "_background_noise_")
    with pytest.raises(CorpusError, match="_background_noise_"):
        open_corpus(sc_copy)


def test_wrong_rate_file_is_named(sc_copy, tmp_path):
    bad = sc_copy / "up" / "9f9f9f9f_nohash_0.wav"
    write_wav(bad, np.zeros(8000, np.float32), 8000)
    corpus = open_corpus(sc_copy, cache_dir=tmp_path / "cache")
    with pytest.raises(CorpusError, match="9f9f9f9f_nohash_0.wav: sample rate is 8000 Hz, expected 16000"):
        corpus.rows("train")


def test_info_on_speech_commands(speech_commands_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("FIRSTSPIKE_CACHE", str(tmp_path))
    assert main(["data", "info", str(speech_commands_dir)]) == 0
    out = capsys.readouterr().out
    assert "Speech Commands" in out and "human" in out and "_silence_" in out


def test_fine_tune_the_bundled_model_on_speech_commands(speech_commands_dir, tmp_path):
    """The user story of `--init`: go on from the bundled synthetic-speech model on real recordings."""
    bundled = Path(__file__).resolve().parents[3] / "models" / "default" / "checkpoint.pt"
    out = tmp_path / "sc-ft"
    assert main(["train", "--corpus", str(speech_commands_dir), "--task", "sc12", "--init", str(bundled),
                 "--lr", "3e-4", "--epochs", "1", "--quiet", "--workers", "1", "--out", str(out)]) == 0
    start, _ = load_checkpoint(bundled)
    tuned, ckpt = load_checkpoint(out / "last.pt")
    assert tuned.config.hidden == start.config.hidden and tuned.config.labels == start.config.labels
    assert ckpt["train_summary"]["init"] == str(bundled)
    assert torch.equal(tuned.feat_mean, start.feat_mean)  # the normalisation its weights were learned with
    moved = tuned.state_dict()["classifier.head.weight"] - start.state_dict()["classifier.head.weight"]
    assert 0 < moved.abs().max() < 0.1  # trained a little, from where the bundled model was
