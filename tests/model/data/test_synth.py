"""The tiny synthetic corpus: manifest validity, voice-disjoint splits, determinism, resume, errors."""

from __future__ import annotations

import csv
import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from firstspike.model.data.audio import load_wav
from firstspike.model.data.corpus import MANIFEST_COLUMNS
from firstspike.model.data.synth import BuildError, build_corpus
from firstspike.model.data.tts import EngineMissing, check_engines
from firstspike.model.labels import FILLERS, SC35_WORDS


def _manifest(root: Path) -> list[dict]:
    with (root / "manifest.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        return list(reader)


def _audio_files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in (root / "audio").rglob("*.wav"))


def test_manifest_rows_are_valid(tiny_corpus):
    rows = _manifest(tiny_corpus)
    assert 80 <= len(rows) <= 300
    assert len(_audio_files(tiny_corpus)) == len(rows)
    for row in rows:
        assert row["label"] in set(SC35_WORDS) | set(FILLERS)
        audio = load_wav(tiny_corpus / row["path"])
        duration = float(row["duration_ms"])
        assert abs(duration - 1000 * audio.size / 16000) < 0.1
        assert float(abs(audio).max()) <= 1.0 and float(abs(audio).max()) > 0.0
        if row["kind"] == "silence":
            assert row["label"] == "_silence_" and row["onset_ms"] == row["offset_ms"] == ""
            continue
        onset, offset = float(row["onset_ms"]), float(row["offset_ms"])
        assert 0 <= onset < offset <= duration
        assert 100 <= offset - onset <= 1500, row
        assert row["word"] and (row["word"] == row["label"] or row["label"] == "_unknown_")
        if row["kind"] == "clip":
            assert 1000 <= duration <= 1600
        else:
            assert 3000 <= duration <= 10000 and offset > duration - 700
    assert {r["kind"] for r in rows} == {"clip", "stream", "silence"}
    assert {r["engine"] for r in rows} >= {"espeak-ng", "flite", "festival"}


def test_manifest_records_each_examples_channel(tiny_corpus):
    rows = _manifest(tiny_corpus)
    for row in rows:
        assert row["reverb"] in ("0", "1") and row["telephone"] in ("0", "1")
        if row["kind"] == "silence":  # background only: no speech to measure a ratio against
            assert row["noise"] in ("white", "pink", "brown", "hum", "quiet") and row["snr_db"] == ""
            assert row["reverb"] == row["telephone"] == "0"
        else:
            assert row["noise"] in ("white", "pink", "brown", "hum", "babble")
            snr = float(row["snr_db"])
            assert 0 <= snr <= 30 or (row["noise"] == "white" and 55 <= snr <= 75), row  # 75: a noise floor only
    speech = [r for r in rows if r["kind"] != "silence"]
    assert {r["reverb"] for r in speech} == {"0", "1"}


def test_splits_are_voice_disjoint_and_recorded(tiny_corpus):
    rows = _manifest(tiny_corpus)
    split_of = {}
    for row in rows:
        if row["voice"]:
            assert split_of.setdefault(row["voice"], row["split"]) == row["split"], row["voice"]
    meta = json.loads((tiny_corpus / "corpus.json").read_text())
    assert all(meta["voices"][voice] == split for voice, split in split_of.items())
    test_engines = {voice.split(":")[0] for voice, split in meta["voices"].items() if split == "test"}
    assert {"flite", "festival", "espeak-ng"} <= test_engines
    assert meta["preset"] == "tiny" and meta["seed"] == 0 and meta["build_seconds"] > 0
    assert set(meta["engine_versions"]) == {"espeak-ng", "flite", "festival"}


def test_same_seed_gives_identical_files_and_resume_loses_nothing(tiny_corpus, tmp_path):
    again = tmp_path / "again"
    build_corpus(again, "tiny", seed=0, workers=1, progress=False)
    files = _audio_files(tiny_corpus)
    assert files == _audio_files(again)
    _, mismatch, errors = filecmp.cmpfiles(tiny_corpus, again, [str(f) for f in files] + ["manifest.csv"], shallow=False)
    assert not mismatch and not errors

    # Simulate an interrupted run: a bank batch, some clips, chunk records and the final files gone,
    # a half-written temporary file left behind. Re-running must restore identical bytes.
    shutil.rmtree(next((again / ".bank").iterdir()))
    for marker in list((again / ".bank").glob("*/*.done"))[:1]:
        marker.unlink()
    for path in files[::7]:
        (again / path).unlink()
    for part in sorted((again / ".parts").glob("*.csv"))[1:]:
        part.unlink()
    (again / "manifest.csv").unlink()
    (again / "corpus.json").unlink()
    # A chunk record from a build before the channel columns: stale, so its chunk is rendered again.
    first = sorted((again / ".parts").glob("*.csv"))[0]
    old_header = ",".join(MANIFEST_COLUMNS[:10])
    first.write_text("\n".join([old_header] + [",".join(line.split(",")[:10]) for line in first.read_text().splitlines()[1:]]) + "\n")
    (again / "audio" / ".c000000.wav.abc.tmp").write_bytes(b"partial")
    meta = build_corpus(again, "tiny", seed=0, workers=2, progress=False)
    assert meta["resumed"] is True
    _, mismatch, errors = filecmp.cmpfiles(tiny_corpus, again, [str(f) for f in files] + ["manifest.csv"], shallow=False)
    assert not mismatch and not errors
    assert not list(again.rglob("*.tmp"))


def test_other_seed_differs_and_folder_refuses_another_plan(tiny_corpus, tmp_path):
    with pytest.raises(BuildError, match="seed 0"):
        build_corpus(tiny_corpus, "tiny", seed=1, workers=1, progress=False)
    (tmp_path / "stuff.txt").write_text("not a corpus")
    with pytest.raises(BuildError, match="not empty"):
        build_corpus(tmp_path, "tiny", seed=0, workers=1, progress=False)


def test_missing_engine_names_the_apt_packages(tmp_path, monkeypatch):
    real_path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no TTS engine on PATH
    with pytest.raises(EngineMissing, match="apt-get install espeak-ng festival festvox-kallpc16k"):
        check_engines({"espeak-ng", "festival"})
    monkeypatch.setenv("PATH", real_path)
    with pytest.raises(EngineMissing, match="voices not installed: no_such_voice.\nNo Debian package") as err:
        check_engines({"festival"}, {"cmu_us_slt_arctic_hts", "no_such_voice"})
    assert "cmu_us_slt" not in str(err.value)


def test_cli_reports_missing_engine(tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "firstspike.cli", "data", "synth", "--out", str(tmp_path / "c"), "--preset", "tiny"],
        capture_output=True, text=True, env={**os.environ, "PATH": str(empty_bin)}, timeout=60,
    )
    assert result.returncode == 1
    assert "not found on PATH" in result.stderr and "apt-get install espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite" in result.stderr
