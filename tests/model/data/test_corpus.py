"""Opening corpora for a task, and the errors for bad folders and manifests."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from firstspike.cli import main
from firstspike.model.data.corpus import CorpusError, Row, open_corpus
from firstspike.model.labels import SC12_COMMANDS, SC35_WORDS


def test_synth_corpus_under_both_tasks(tiny_corpus):
    sc12 = open_corpus(tiny_corpus, "sc12")
    assert sc12.task == "sc12" and sc12.root == tiny_corpus
    assert sc12.labels == list(SC12_COMMANDS) + ["_silence_", "_unknown_"]
    assert sc12.firing_labels == list(SC12_COMMANDS)
    train = sc12.rows("train")
    assert train and all(isinstance(r, Row) and Path(r.path).is_absolute() for r in train)
    marvin = [r for r in train if r.word == "marvin"]
    assert marvin and all(r.label == "_unknown_" for r in marvin)  # not an sc12 command
    sc35 = open_corpus(tiny_corpus, "sc35")
    assert {r.label for r in sc35.rows("train") if r.word == "marvin"} == {"marvin"}
    assert len(sc35.labels) == len(SC35_WORDS) + 2
    total = sum(len(sc12.rows(s)) for s in ("train", "val", "test"))
    assert total == len(sc12)
    summary = sc12.summary()
    assert "\n" not in summary and "tiny" in summary and "sc12" in summary
    with pytest.raises(CorpusError, match="unknown split"):
        sc12.rows("dev")


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        open_corpus(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="is empty"):
        open_corpus(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CorpusError, match="neither corpus kind"):
        open_corpus(tmp_path)
    with pytest.raises(CorpusError, match="unknown task"):
        open_corpus(tmp_path, task="sc99")


def _copy_manifest_corpus(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".bank", ".parts"))
    return dst


def _last_column(text: str, value: str) -> str:
    lines = text.splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + "," + value
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda text: text.replace(",_silence_,", ",_noise_,", 1), "unknown label '_noise_'"),
        (lambda text: text.replace("label,", "lable,", 1), "missing columns"),
        (lambda text: text.splitlines()[0] + "\n", "lists no audio files"),
        (lambda text: text.replace(",clip,", ",clip,abc", 1), "not a number"),
        (lambda text: text.replace(",reverb,", ",room,", 1), "not all of"),
        (lambda text: _last_column(text, "2"), "must be 0 or 1"),
    ],
)
def test_bad_manifests(tiny_corpus, tmp_path, edit, message):
    root = _copy_manifest_corpus(tiny_corpus, tmp_path / "c")
    manifest = root / "manifest.csv"
    manifest.write_text(edit(manifest.read_text()))
    with pytest.raises(CorpusError, match=message):
        open_corpus(root)


def test_manifest_without_channel_columns_still_opens(tiny_corpus, tmp_path):
    """Corpora built before the channel columns existed open as before, with no channel per row."""
    root = _copy_manifest_corpus(tiny_corpus, tmp_path / "c")
    manifest = root / "manifest.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(",".join(line.split(",")[:10]) for line in lines) + "\n")
    old = open_corpus(root).rows("test")
    new = open_corpus(tiny_corpus).rows("test")
    assert all(r.channel is None for r in old) and all(r.channel is not None for r in new)

    def relative(row: Row, base: Path) -> Row:
        return replace(row, path=str(Path(row.path).relative_to(base.resolve())), channel=None)

    assert [relative(r, root) for r in old] == [relative(r, tiny_corpus) for r in new]


def test_missing_audio_file(tiny_corpus, tmp_path):
    root = _copy_manifest_corpus(tiny_corpus, tmp_path / "c")
    next((root / "audio").rglob("*.wav")).unlink()
    with pytest.raises(CorpusError, match="1 file\\(s\\) listed in manifest.csv are missing"):
        open_corpus(root)


def test_info_command(tiny_corpus, capsys):
    assert main(["data", "info", str(tiny_corpus), "--task", "sc35"]) == 0
    out = capsys.readouterr().out
    assert "marvin" in out and "festival" in out and "stream" in out and "voices per split" in out
    assert main(["data", "info", str(tiny_corpus / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err
