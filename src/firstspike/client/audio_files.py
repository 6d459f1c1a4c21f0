"""Audio files as the client sends them: native rate, pcm_s16le, cut into fixed-length chunks.

The client never resamples: it declares the file's own rate and the server's streaming resampler does
the rest, so what we measure is what a real caller would see.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firstspike.protocol import SUPPORTED_CHANNELS, SUPPORTED_RATES

AUDIO_SUFFIXES = (".wav", ".flac")
BYTES_PER_SAMPLE = 2  # pcm_s16le
FILLER_SILENCE, FILLER_UNKNOWN = "_silence_", "_unknown_"
NOISE_FOLDER = "_background_noise_"  # Speech Commands keeps its noise here; it stands for silence


class AudioInputError(ValueError):
    """A file or list of files the client cannot stream (unreadable, unsupported rate, no labels...)."""


@dataclass(frozen=True)
class Clip:
    """One file, decoded once, ready to be chunked."""

    path: Path
    sample_rate: int
    channels: int
    pcm: bytes  # interleaved little-endian int16
    label: str | None = None

    @property
    def frames(self) -> int:
        return len(self.pcm) // (BYTES_PER_SAMPLE * self.channels)

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.frames / self.sample_rate

    def chunk_frames(self, chunk_ms: float) -> int:
        return max(1, round(self.sample_rate * chunk_ms / 1000.0))

    def chunks(self, chunk_ms: float) -> list[bytes]:
        """Fixed-size chunks (the last may be short); chunk k starts at k * chunk_ms of audio."""
        step = self.chunk_frames(chunk_ms) * self.channels * BYTES_PER_SAMPLE
        return [self.pcm[i : i + step] for i in range(0, len(self.pcm), step)]

    def start_message(self) -> dict:
        return {"type": "start", "sample_rate": self.sample_rate, "encoding": "pcm_s16le", "channels": self.channels}


def load_clip(path: str | Path, label: str | None = None) -> Clip:
    """Decode a WAV/FLAC to int16 at its native rate; refuse what protocol v1 cannot carry."""
    import soundfile as sf

    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioInputError(f"{path}: cannot read audio ({err})") from None
    if rate not in SUPPORTED_RATES:
        rates = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise AudioInputError(f"{path}: sample rate {rate} Hz is not in protocol v1 ({rates}); resample it first")
    channels = data.shape[1]
    if channels not in SUPPORTED_CHANNELS:
        # More than two channels: the protocol carries at most stereo, so mix down here.
        data = data.astype(np.int32).mean(axis=1, keepdims=True).astype(np.int16)
        channels = 1
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: the file holds no audio")
    return Clip(path=path, sample_rate=int(rate), channels=channels, pcm=data.astype("<i2").tobytes(), label=label)


@dataclass(frozen=True)
class LabelledPath:
    path: Path
    label: str | None


def _audio_files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _read_label_csv(csv_path: Path) -> list[LabelledPath]:
    """A corpus manifest or a labels.csv: columns `path` and `label`, paths relative to the csv's folder."""
    try:
        with csv_path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise AudioInputError(f"{csv_path}: cannot read ({err})") from None
    if not rows or "path" not in rows[0]:
        raise AudioInputError(f"{csv_path}: expected a CSV with at least the columns 'path' and 'label'")
    base = csv_path.parent
    items = []
    for row in rows:
        path = Path(row["path"])
        items.append(LabelledPath(path if path.is_absolute() else base / path, (row.get("label") or "").strip() or None))
    return items


def _label_from_folder(path: Path) -> str:
    parent = path.parent.name
    return FILLER_SILENCE if parent == NOISE_FOLDER else parent


def discover(target: str | Path, split: str | None = None) -> list[LabelledPath]:
    """Expand FILE, DIR or MANIFEST.csv into labelled paths.

    A directory with a `labels.csv` (or a corpus `manifest.csv`) takes its labels from it; otherwise the
    parent folder names the label, as in Speech Commands.
    """
    target = Path(target)
    if not target.exists():
        raise AudioInputError(f"{target}: no such file or directory")
    if target.is_dir():
        for name in ("labels.csv", "manifest.csv"):
            if (target / name).is_file():
                items = _read_label_csv(target / name)
                break
        else:
            items = [LabelledPath(p, _label_from_folder(p)) for p in _audio_files_under(target)]
    elif target.suffix.lower() == ".csv":
        items = _read_label_csv(target)
    elif target.suffix.lower() in AUDIO_SUFFIXES:
        return [LabelledPath(target, None)]
    else:
        raise AudioInputError(f"{target}: expected a .wav/.flac file, a folder, or a manifest .csv")
    if split is not None:
        items = _filter_split(target, items, split)
    if not items:
        raise AudioInputError(f"{target}: no .wav or .flac files found")
    return items


def _filter_split(target: Path, items: list[LabelledPath], split: str) -> list[LabelledPath]:
    manifest = target if target.suffix.lower() == ".csv" else target / "manifest.csv"
    if not manifest.is_file():
        raise AudioInputError(f"--split needs a corpus manifest with a 'split' column; {manifest} is missing")
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "split" not in rows[0]:
        raise AudioInputError(f"{manifest}: has no 'split' column")
    keep = {(manifest.parent / r["path"]).resolve() for r in rows if r.get("split") == split}
    return [item for item in items if item.path.resolve() in keep]


def truth_label(label: str | None, model_labels: list[str] | tuple[str, ...]) -> str | None:
    """The class a labelled clip should get from this model: words outside its labels are `_unknown_`."""
    if label is None:
        return None
    if label in model_labels:
        return label
    if label == FILLER_SILENCE:
        return FILLER_SILENCE
    return FILLER_UNKNOWN


def is_filler(label: str | None) -> bool:
    return label in (FILLER_SILENCE, FILLER_UNKNOWN)
