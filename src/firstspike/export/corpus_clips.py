"""Read the clips of one corpus split for verification: only `path` and `split` of the manifest matter."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf


class CorpusError(ValueError):
    """The corpus folder, its manifest or one of its clips cannot be used."""


def read_clips(corpus: Path, split: str, sample_rate: int, limit: int | None = None) -> list[tuple[str, str, np.ndarray]]:
    """[(relative path, manifest label or '', mono float32 audio)] of `split` ('all' = every row), in manifest order."""
    manifest = Path(corpus) / "manifest.csv"
    if not manifest.is_file():
        raise CorpusError(f"no manifest.csv in {corpus} (build a corpus with `firstspike data synth`)")
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "split"} <= set(reader.fieldnames):
            raise CorpusError(f"{manifest} needs the columns 'path' and 'split', has {reader.fieldnames}")
        rows = [row for row in reader if split == "all" or row["split"] == split]
    if not rows:
        raise CorpusError(f"{manifest} has no clips in split {split!r}")
    clips = []
    for row in rows[:limit]:
        path = Path(corpus) / row["path"]
        try:
            audio, rate = sf.read(path, dtype="float32", always_2d=True)
        except (OSError, RuntimeError) as err:
            raise CorpusError(f"cannot read {path}: {err}") from None
        if rate != sample_rate:
            raise CorpusError(f"{path} is sampled at {rate} Hz, the model expects {sample_rate} Hz")
        clips.append((row["path"], row.get("label") or "", np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)))
    return clips
