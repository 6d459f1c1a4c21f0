"""Google Speech Commands v0.02 from a local folder, in its standard layout.

Train is every file in neither `validation_list.txt` nor `testing_list.txt`. The dataset has no
onset/offset labels, so they are estimated by energy voice activity the first time a split is
used, and cached. `_silence_` rows are 1 s crops of `_background_noise_/`, cut deterministically
into the cache: the first 80% of each noise file feeds train, the next 10% val, the last 10% test,
so no background sample is shared between splits. The speaker id (the file-name part before
`_nohash_`) is the `voice`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import zlib
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from firstspike.model.data.audio import SAMPLE_RATE, AudioError, atomic_write_bytes, load_wav, speech_bounds, write_wav
from firstspike.model.data.corpus import Corpus, CorpusError, Row
from firstspike.model.labels import SILENCE, map_label

LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
NOISE_DIR = "_background_noise_"
ENGINE = "human"
SPLIT_REGIONS = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
CROP_HOP_S = 0.5
VAD_COLUMNS = ("path", "size", "mtime_ns", "duration_ms", "onset_ms", "offset_ms")


def default_cache_dir() -> Path:
    return Path(os.environ.get("FIRSTSPIKE_CACHE", Path.home() / ".cache" / "firstspike")) / "speech_commands"


def _word_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
                  and any(p.glob("*.wav")))


def looks_like_speech_commands(root: Path) -> bool:
    return any((root / name).is_file() for name in LISTS.values()) or bool(_word_dirs(root))


def diagnose(root: Path) -> str:
    """Why a folder is not a usable Speech Commands copy, as a suffix for error messages."""
    if not root.is_dir() or not any(root.iterdir()):
        return ""
    missing = [name for name in LISTS.values() if not (root / name).is_file()]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if not _word_dirs(root):
        parts.append("no word folders with .wav files")
    return f" ({'; '.join(parts)})" if parts else ""


def _read_list(root: Path, name: str) -> set[str]:
    entries = set()
    for line_no, line in enumerate((root / name).read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.count("/") != 1 or not line.endswith(".wav"):
            raise CorpusError(f"{root / name} line {line_no}: expected 'word/file.wav', got {line!r}")
        entries.add(line)
    return entries


def _silence_rows(root: Path, cache: Path) -> list[Row]:
    noise_dir = root / NOISE_DIR
    sources = sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    if not sources:
        raise CorpusError(f"{root}: no {NOISE_DIR}/*.wav files; they are needed for the {SILENCE} rows")
    out_dir = cache / "silence"
    rows = []
    for source in sources:
        try:
            audio = load_wav(source)
        except AudioError as err:
            raise CorpusError(str(err)) from None
        rng = np.random.default_rng([zlib.crc32(source.name.encode()), 5])
        for split, (lo, hi) in SPLIT_REGIONS.items():
            start, stop, k = int(lo * audio.size), int(hi * audio.size), 0
            while start + SAMPLE_RATE <= stop:
                path = out_dir / split / f"{source.stem}_{k:04d}.wav"
                gain_db = rng.uniform(-20.0, 0.0)  # drawn for every crop, so crops never shift
                if not path.is_file():
                    write_wav(path, audio[start : start + SAMPLE_RATE] * 10.0 ** (gain_db / 20.0))
                rows.append(Row(str(path), SILENCE, "", "", "noise", split, "silence", None, None, 1000.0))
                start += int(CROP_HOP_S * SAMPLE_RATE)
                k += 1
    return rows


def _vad_one(job: tuple[str, int, int]) -> tuple[str, int, int, float, float | None, float | None]:
    path, size, mtime = job
    try:
        audio = load_wav(path)
    except AudioError as err:
        raise CorpusError(str(err)) from None
    bounds = speech_bounds(audio)
    duration = 1000.0 * audio.size / SAMPLE_RATE
    return (path, size, mtime, duration, *(bounds if bounds else (None, None)))


class _VadCache:
    """Onset/offset/duration per file, keyed by path, size and mtime so edits are noticed."""

    def __init__(self, file: Path):
        self.file, self.entries = file, {}
        if file.is_file():
            with file.open(newline="") as handle:
                for rec in csv.DictReader(handle):
                    self.entries[rec["path"]] = rec

    def lookup(self, path: str, size: int, mtime: int):
        rec = self.entries.get(path)
        if rec and int(rec["size"]) == size and int(rec["mtime_ns"]) == mtime:
            on, off = rec["onset_ms"], rec["offset_ms"]
            return float(rec["duration_ms"]), float(on) if on else None, float(off) if off else None
        return None

    def update(self, results) -> None:
        for path, size, mtime, duration, on, off in results:
            self.entries[path] = {"path": path, "size": size, "mtime_ns": mtime, "duration_ms": duration,
                                  "onset_ms": "" if on is None else on, "offset_ms": "" if off is None else off}
        buffer = [",".join(VAD_COLUMNS)]
        for rec in self.entries.values():
            buffer.append(",".join(str(rec[c]) for c in VAD_COLUMNS))
        atomic_write_bytes(self.file, ("\n".join(buffer) + "\n").encode())


def _resolver(cache: Path, workers: int):
    def resolve(rows: list[Row]) -> list[Row]:
        vad = _VadCache(cache / "vad.csv")
        todo, stats = [], {}
        for row in rows:
            if row.kind == "silence":
                continue
            st = os.stat(row.path)
            stats[row.path] = (st.st_size, st.st_mtime_ns)
            if vad.lookup(row.path, *stats[row.path]) is None:
                todo.append((row.path, *stats[row.path]))
        if todo:
            from tqdm import tqdm

            bar = dict(total=len(todo), desc="estimating onsets (energy VAD, cached)", unit="file", leave=False)
            if workers > 1 and len(todo) > 2000:
                with Pool(workers) as pool:
                    results = list(tqdm(pool.imap(_vad_one, todo, chunksize=256), **bar))
            else:
                results = [_vad_one(job) for job in tqdm(todo, **bar)]
            vad.update(results)
        out = []
        for row in rows:
            if row.kind == "silence":
                out.append(row)
                continue
            duration, on, off = vad.lookup(row.path, *stats[row.path])
            out.append(Row(row.path, row.label, row.word, row.voice, row.engine, row.split, row.kind, on, off, duration))
        return out

    return resolve


def open_speech_commands(root: Path, task: str, cache_dir: str | Path | None = None,
                         workers: int | None = None) -> Corpus:
    problem = diagnose(root)
    if problem:
        raise CorpusError(f"{root} is not a usable Speech Commands v0.02 folder{problem}")
    root = root.resolve()
    lists = {split: _read_list(root, name) for split, name in LISTS.items()}
    both = lists["val"] & lists["test"]
    if both:
        raise CorpusError(f"{root}: {len(both)} file(s) are in both list files, e.g. {sorted(both)[:3]}")
    listing, seen = [], set()
    for folder in _word_dirs(root):
        word = folder.name
        for wav in sorted(folder.glob("*.wav")):
            rel = f"{word}/{wav.name}"
            seen.add(rel)
            split = "val" if rel in lists["val"] else "test" if rel in lists["test"] else "train"
            speaker = wav.stem.split("_nohash_")[0]
            listing.append(Row(str(wav), map_label(word, task), word, speaker, ENGINE, split, "clip", None, None, 1000.0))
    missing = sorted((lists["val"] | lists["test"]) - seen)
    if missing:
        raise CorpusError(f"{root}: {len(missing)} file(s) named in the list files are missing, e.g. {missing[:3]}")
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    cache = Path(cache_dir) if cache_dir else default_cache_dir() / f"{root.name}-{digest}"
    listing += _silence_rows(root, cache)
    meta = {"source": "speech_commands_v0.02", "cache": str(cache)}
    return Corpus(root, task, "speech_commands", listing, _resolver(cache, workers or os.cpu_count() or 1), meta)

