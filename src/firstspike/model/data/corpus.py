"""Open a keyword corpus, synthetic (`manifest.csv`) or Speech Commands v0.02, as task-mapped rows.

The manifest keeps the spoken word; the task (`sc12`, `sc35`) is applied here, when the corpus is
opened, so one corpus serves every task.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from firstspike.model.labels import FILLERS, SC35_WORDS, SILENCE, TASKS, UNKNOWN, map_label, task_labels

MANIFEST = "manifest.csv"
CORPUS_JSON = "corpus.json"
REQUIRED_COLUMNS = ("path", "label", "word", "voice", "engine", "split", "kind", "onset_ms", "offset_ms", "duration_ms")
# Optional: corpora built before these columns existed lack them, and then carry no channel.
CHANNEL_COLUMNS = ("noise", "snr_db", "reverb", "telephone")
MANIFEST_COLUMNS = REQUIRED_COLUMNS + CHANNEL_COLUMNS
SPLITS = ("train", "val", "test")
KINDS = ("clip", "stream", "silence")
MANIFEST_LABELS = frozenset(SC35_WORDS) | frozenset(FILLERS)


class CorpusError(ValueError):
    """The corpus folder or its manifest is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Channel:
    """What was laid over the clean speech, so that evaluation can break accuracy down by condition."""

    noise: str  # white | pink | brown | hum | babble, or for background-only clips also quiet
    snr_db: float | None  # speech power over noise power; None where there is no speech
    reverb: bool
    telephone: bool


@dataclass(frozen=True)
class Row:
    """One audio file of a corpus; `label` is already mapped to the corpus's task."""

    path: str  # absolute
    label: str
    word: str
    voice: str
    engine: str
    split: str
    kind: str  # clip | stream | silence
    onset_ms: float | None
    offset_ms: float | None
    duration_ms: float
    channel: Channel | None = None  # None: not recorded (Speech Commands, older synthetic corpora)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def manifest_line(rel_path: str, label: str, word: str, voice: str, engine: str, split: str, kind: str,
                  onset_ms: float | None, offset_ms: float | None, duration_ms: float, channel: Channel) -> list[str]:
    """One manifest row as CSV fields, in MANIFEST_COLUMNS order."""
    snr = "" if channel.snr_db is None else f"{channel.snr_db:.1f}"
    return [rel_path, label, word, voice, engine, split, kind, _ms(onset_ms), _ms(offset_ms), _ms(duration_ms),
            channel.noise, snr, str(int(channel.reverb)), str(int(channel.telephone))]


def manifest_text(lines: Iterable[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    writer.writerows(lines)
    return out.getvalue()


class Corpus:
    """A corpus opened for one task. Rows are loaded per split, on first use."""

    def __init__(self, root: Path, task: str, source: str, listing: list[Row],
                 resolve: Callable[[list[Row]], list[Row]] | None = None, meta: dict | None = None):
        self.root, self.task, self.source = Path(root), task, source
        self.labels, self.firing_labels = task_labels(task)
        self.meta = meta or {}
        self._listing = listing
        self._resolve = resolve
        self._resolved: dict[str, list[Row]] = {}

    def rows(self, split: str) -> list[Row]:
        """All rows of `split` (train, val or test), with onset/offset filled in."""
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self._resolved:
            rows = [r for r in self._listing if r.split == split]
            self._resolved[split] = self._resolve(rows) if self._resolve else rows
        return self._resolved[split]

    def counts(self, by: str) -> dict[str, Counter]:
        """Per split, how many rows have each value of `by` (label, engine, kind, voice...)."""
        out: dict[str, Counter] = {s: Counter() for s in SPLITS}
        for row in self._listing:
            out[row.split][getattr(row, by)] += 1
        return out

    def __len__(self) -> int:
        return len(self._listing)

    def summary(self) -> str:
        """One line for model metadata: what the model was trained on."""
        per_split = " / ".join(f"{s} {sum(1 for r in self._listing if r.split == s)}" for s in SPLITS)
        if self.source == "synth":
            engines = ",".join(sorted({r.engine for r in self._listing if r.kind != "silence"}))
            build = f"preset {self.meta.get('preset', '?')}, seed {self.meta.get('seed', '?')}, "
            return f"synthetic corpus {self.root.name} ({build}{engines}; {per_split}; task {self.task})"
        return f"Speech Commands v0.02 at {self.root.name} ({per_split}; task {self.task})"


# -- synthetic corpora ------------------------------------------------------------------------
def _float(value: str, column: str, where: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise CorpusError(f"{where}: column {column!r} is not a number: {value!r}") from None


def _flag(value: str, column: str, where: str) -> bool:
    if value not in ("0", "1"):
        raise CorpusError(f"{where}: column {column!r} must be 0 or 1, got {value!r}")
    return value == "1"


def _channel(rec: dict, where: str) -> Channel | None:
    if rec["noise"] == "":
        return None
    return Channel(rec["noise"], _float(rec["snr_db"], "snr_db", where), _flag(rec["reverb"], "reverb", where),
                   _flag(rec["telephone"], "telephone", where))


def read_manifest(root: Path, task: str, check_files: bool = True) -> list[Row]:
    path = root / MANIFEST
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing_cols = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing_cols:
            raise CorpusError(f"{path}: missing columns {missing_cols} (expected {list(MANIFEST_COLUMNS)})")
        channel_cols = [c for c in CHANNEL_COLUMNS if c in columns]
        if channel_cols and len(channel_cols) < len(CHANNEL_COLUMNS):
            raise CorpusError(f"{path}: has channel columns {channel_cols} but not all of {list(CHANNEL_COLUMNS)}")
        rows = []
        for line_no, rec in enumerate(reader, start=2):
            where = f"{path} line {line_no}"
            label = rec["label"]
            if label not in MANIFEST_LABELS:
                raise CorpusError(f"{where}: unknown label {label!r}: expected a Speech Commands word, "
                                  f"{UNKNOWN} or {SILENCE}")
            if rec["split"] not in SPLITS or rec["kind"] not in KINDS:
                raise CorpusError(f"{where}: split {rec['split']!r} / kind {rec['kind']!r} not in {SPLITS} / {KINDS}")
            onset, offset = _float(rec["onset_ms"], "onset_ms", where), _float(rec["offset_ms"], "offset_ms", where)
            duration = _float(rec["duration_ms"], "duration_ms", where)
            if duration is None or duration <= 0:
                raise CorpusError(f"{where}: duration_ms must be positive")
            if (onset is None) != (offset is None) or (onset is not None and not 0 <= onset < offset <= duration + 1):
                raise CorpusError(f"{where}: onset/offset {onset}/{offset} ms do not lie within the {duration} ms clip")
            rows.append(Row(str((root / rec["path"]).resolve()), map_label(label, task), rec["word"], rec["voice"],
                            rec["engine"], rec["split"], rec["kind"], onset, offset, duration,
                            _channel(rec, where) if channel_cols else None))
    if not rows:
        raise CorpusError(f"{path} lists no audio files")
    if check_files:
        missing = [r.path for r in rows if not Path(r.path).is_file()]
        if missing:
            raise CorpusError(f"{root}: {len(missing)} file(s) listed in {MANIFEST} are missing, e.g. {missing[:3]}")
    return rows


def _open_synth(root: Path, task: str) -> Corpus:
    meta = {}
    if (root / CORPUS_JSON).is_file():
        try:
            meta = json.loads((root / CORPUS_JSON).read_text())
        except json.JSONDecodeError as err:
            raise CorpusError(f"{root / CORPUS_JSON} is not valid JSON: {err}") from None
    return Corpus(root, task, "synth", read_manifest(root, task), meta=meta)


# -- entry point ------------------------------------------------------------------------------
def open_corpus(path: str | Path, task: str = "sc12", cache_dir: str | Path | None = None) -> Corpus:
    """Open a synthetic corpus (has manifest.csv) or a Speech Commands v0.02 folder for `task`."""
    from firstspike.model.data import speech_commands

    if task not in TASKS:
        raise CorpusError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    root = Path(path).expanduser()
    if not root.exists():
        raise CorpusError(f"corpus folder {root} does not exist")
    if not root.is_dir():
        raise CorpusError(f"{root} is not a folder")
    if (root / MANIFEST).is_file():
        return _open_synth(root, task)
    if speech_commands.looks_like_speech_commands(root):
        return speech_commands.open_speech_commands(root, task, cache_dir)
    what = "is empty" if not any(root.iterdir()) else "is neither corpus kind"
    raise CorpusError(
        f"{root} {what}: expected {MANIFEST} (a corpus from `firstspike data synth`) or a Speech Commands "
        f"v0.02 folder (word folders of WAVs, validation_list.txt, testing_list.txt, _background_noise_/)"
        + speech_commands.diagnose(root)
    )

