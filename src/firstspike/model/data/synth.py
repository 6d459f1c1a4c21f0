"""Build a synthetic keyword corpus: a bank of clean TTS words, then many augmented renderings.

Two stages, both parallel, resumable and deterministic by seed:
1. bank: every (voice, prosody) speaks its batch of words once; the clean words are cached under
   `.bank/`, and a batch counts as done only when its marker file is written;
2. render: examples are rendered in chunks from the bank with numpy; a chunk counts as done when
   its manifest fragment under `.parts/` is written. Every file is written atomically.
`manifest.csv` and `corpus.json` are written last, so a folder with them is a finished corpus.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import zlib
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from firstspike.model.data.audio import SAMPLE_RATE, atomic_write_bytes, wav_bytes
from firstspike.model.data.corpus import CORPUS_JSON, MANIFEST, SPLITS, manifest_line, manifest_text
from firstspike.model.data.presets import PRESETS, Preset
from firstspike.model.data.render import Bank, BankEntry, Example, render
from firstspike.model.data.tts import Prosody, check_engines, engine_versions, synthesize
from firstspike.model.data.vocabulary import build_vocabulary
from firstspike.model.data.voices import ESPEAK, FESTIVAL, FLITE, Voice
from firstspike.model.labels import SILENCE, UNKNOWN

FORMAT_VERSION = 1
PLAN_FILE = ".plan.json"
CHUNK = 64


class BuildError(RuntimeError):
    """The output folder holds a different corpus, or the environment cannot build one."""


@dataclass(frozen=True)
class BankBatch:
    """The words one voice speaks in one prosody (one engine process where the engine allows)."""

    voice: Voice
    prosody_index: int
    prosody: Prosody
    words: tuple[str, ...]
    hard: frozenset[str]

    @property
    def folder(self) -> str:
        return f".bank/{self.voice.slug}/p{self.prosody_index}"

    @property
    def marker(self) -> str:
        return f"{self.folder}.done"

    def entries(self) -> list[BankEntry]:
        return [BankEntry(w, self.voice.id, self.voice.engine, self.voice.split, f"{self.folder}/{w}.wav", w in self.hard)
                for w in self.words]


def prosody_for(voice: Voice, k: int, seed: int) -> Prosody:
    """Rate and pitch for the k-th prosody of a voice (festival diphone voices: rate only)."""
    rng = np.random.default_rng([seed, zlib.crc32(voice.id.encode()), k])
    rate = rng.uniform(0.8, 1.25)
    pitch = {ESPEAK: rng.uniform(0.6, 1.4), FLITE: rng.uniform(0.85, 1.2), FESTIVAL: 1.0}[voice.engine]
    return Prosody(round(float(rate), 3), round(float(pitch), 3))


def plan_bank(preset: Preset, seed: int, voices: list[Voice], general: list[str], hard: list[str]) -> list[BankBatch]:
    """Keywords in every voice and prosody; each unknown word in a few voices, split by the shares."""
    rng = np.random.default_rng([seed, 2])
    by_split = {s: [v for v in voices if v.split == s] for s in SPLITS}
    extra: dict[tuple[str, int], list[str]] = {}
    for word in sorted(general + hard):
        for _ in range(preset.voices_per_unknown_word):
            split = SPLITS[int(rng.choice(3, p=preset.split_shares))]
            voice = by_split[split][int(rng.integers(len(by_split[split])))]
            extra.setdefault((voice.id, int(rng.integers(preset.prosodies))), []).append(word)
    hard_set = frozenset(hard)
    batches = []
    for voice in voices:
        for k in range(preset.prosodies):
            words = tuple(dict.fromkeys(list(preset.keywords) + extra.get((voice.id, k), [])))
            batches.append(BankBatch(voice, k, prosody_for(voice, k, seed), words, hard_set & frozenset(words)))
    return batches


def plan_examples(preset: Preset, seed: int) -> list[Example]:
    """Every example's label, kind and split; everything else is drawn when it is rendered."""
    rng = np.random.default_rng([seed, 3])
    groups: list[tuple[str, int, float]] = [(w, preset.examples_for(w), preset.stream_share) for w in preset.keywords]
    groups += [(UNKNOWN, preset.unknown, preset.unknown_stream_share), (SILENCE, preset.silence, 0.0)]
    examples = []
    for label, count, stream_share in groups:
        streams = int(round(count * stream_share))
        kinds = ["silence"] * count if label == SILENCE else ["stream"] * streams + ["clip"] * (count - streams)
        splits = rng.choice(3, size=count, p=preset.split_shares)
        for kind, split in zip(kinds, splits):
            examples.append(Example(len(examples), kind, label, SPLITS[int(split)]))
    return examples


def example_path(example: Example) -> str:
    prefix = {"clip": "c", "stream": "s", "silence": "n"}[example.kind]
    return f"audio/{example.split}/{example.label}/{prefix}{example.index:06d}.wav"


# -- workers ------------------------------------------------------------------------------------
def _bank_job(args: tuple[str, BankBatch]) -> int:
    root, batch = Path(args[0]), args[1]
    marker = root / batch.marker
    if marker.is_file() and marker.read_text() == "\n".join(batch.words):
        return len(batch.words)
    for word, audio in synthesize(batch.voice, batch.prosody, list(batch.words)).items():
        atomic_write_bytes(root / batch.folder / f"{word}.wav", wav_bytes(audio, SAMPLE_RATE))
    atomic_write_bytes(marker, "\n".join(batch.words).encode())
    return len(batch.words)


_WORKER: dict = {}


def _init_render(root: str, entries: list[BankEntry], seed: int, hard_share: float) -> None:
    _WORKER.update(root=Path(root), bank=Bank(Path(root), entries), seed=seed, hard_share=hard_share)


def _render_chunk(args: tuple[int, list[Example]]) -> int:
    index, examples = args
    root: Path = _WORKER["root"]
    fragment = root / ".parts" / f"chunk_{index:05d}.csv"
    if _fragment_current(fragment) and all((root / example_path(ex)).is_file() for ex in examples):
        return len(examples)
    lines = []
    for ex in examples:
        out = render(ex, _WORKER["bank"], _WORKER["seed"], _WORKER["hard_share"])
        rel = example_path(ex)
        atomic_write_bytes(root / rel, wav_bytes(out.audio, SAMPLE_RATE))
        lines.append(manifest_line(rel, ex.label, out.word, out.voice, out.engine, ex.split, ex.kind,
                                   out.onset_ms, out.offset_ms, 1000.0 * out.audio.size / SAMPLE_RATE, out.channel))
    atomic_write_bytes(fragment, manifest_text(lines).encode())
    return len(examples)


def _fragment_current(fragment: Path) -> bool:
    """A chunk's manifest fragment exists and has this version's columns (older builds lack some)."""
    if not fragment.is_file():
        return False
    with fragment.open(encoding="utf-8") as handle:
        return handle.readline() == manifest_text([])


def _start_worker(initializer, initargs) -> None:
    """Workers leave Ctrl-C and SIGTERM to the parent, which stops the pool (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer:
        initializer(*initargs)


def _run_parallel(fn, jobs: list, workers: int, bar, weight=lambda job: 1, initializer=None, initargs=()):
    if workers <= 1:
        if initializer:
            initializer(*initargs)
        for job in jobs:
            fn(job)
            bar.update(weight(job))
        return
    with Pool(workers, initializer=_start_worker, initargs=(initializer, initargs)) as pool:
        for job, _ in zip(jobs, pool.imap(fn, jobs)):
            bar.update(weight(job))


# -- orchestration ------------------------------------------------------------------------------
def _check_plan(root: Path, plan: dict) -> None:
    path = root / PLAN_FILE
    plan = json.loads(json.dumps(plan))  # tuples become lists, as they will when read back
    if path.is_file():
        old = json.loads(path.read_text())
        if old != plan:
            raise BuildError(f"{root} already holds a corpus built with preset {old.get('preset')!r}, seed "
                             f"{old.get('seed')}; choose another --out folder or delete this one")
    elif root.exists() and any(p for p in root.iterdir() if p.name != PLAN_FILE):
        raise BuildError(f"{root} is not empty and holds no corpus plan; choose an empty or new folder")
    atomic_write_bytes(path, json.dumps(plan, indent=1, sort_keys=True).encode())


def _check_espeak_variants(voices: list[Voice]) -> None:
    wanted = {v.name.split("+")[1] for v in voices if v.engine == ESPEAK and "+" in v.name}
    if not wanted:
        return
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True).stdout
    known = {line.split()[-1].removeprefix("!v/") for line in listing.splitlines()[1:] if line.split()}
    absent = sorted(wanted - known)
    if absent:
        raise BuildError(f"espeak-ng lacks the voice variants {absent}; reinstall espeak-ng-data")


def _remove_partial_files(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                Path(folder, name).unlink(missing_ok=True)


def build_corpus(out: str | Path, preset: str | Preset = "default", seed: int = 0, workers: int | None = None,
                 progress: bool = True) -> dict:
    """Build (or finish building) a corpus in `out`; returns what corpus.json records."""
    from tqdm import tqdm

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    workers = max(1, workers or os.cpu_count() or 1)
    root = Path(out).expanduser().resolve()
    started = time.perf_counter()
    voices = preset.voices()
    check_engines({v.engine for v in voices}, {v.name for v in voices if v.engine == FESTIVAL})
    _check_espeak_variants(voices)
    resumed = (root / PLAN_FILE).is_file()
    _check_plan(root, {"format": FORMAT_VERSION, "preset": preset.name, "seed": seed, "config": preset.to_dict()})
    _remove_partial_files(root)

    general, hard = build_vocabulary(preset.general_vocabulary, preset.hard_per_keyword, seed)
    batches = plan_bank(preset, seed, voices, general, hard)
    timings = {}
    t0 = time.perf_counter()
    with tqdm(total=sum(len(b.words) for b in batches), desc="TTS bank", unit="word", disable=not progress) as bar:
        # Slow batches (festival HTS, per-word flite) first, so no worker is left alone at the end.
        order = sorted(batches, key=lambda b: (b.voice.engine == ESPEAK, -len(b.words)))
        _run_parallel(_bank_job, [(str(root), b) for b in order], workers, bar, weight=lambda job: len(job[1].words))
    timings["bank_s"] = round(time.perf_counter() - t0, 1)

    examples = plan_examples(preset, seed)
    chunks = [(i, examples[i * CHUNK : (i + 1) * CHUNK]) for i in range(-(-len(examples) // CHUNK))]
    entries = [e for b in batches for e in b.entries()]
    t0 = time.perf_counter()
    with tqdm(total=len(examples), desc="rendering", unit="clip", disable=not progress) as bar:
        _run_parallel(_render_chunk, chunks, workers, bar, weight=lambda job: len(job[1]),
                      initializer=_init_render, initargs=(str(root), entries, seed, preset.hard_share))
    timings["render_s"] = round(time.perf_counter() - t0, 1)

    lines = []
    for i, _ in chunks:
        lines += (root / ".parts" / f"chunk_{i:05d}.csv").read_text().splitlines()[1:]
    atomic_write_bytes(root / MANIFEST, (manifest_text([]) + "\n".join(lines) + "\n").encode())
    meta = _describe(preset, seed, voices, examples, general, hard, batches)
    meta.update(build_seconds=round(time.perf_counter() - started, 1), resumed=resumed, workers=workers,
                stage_seconds=timings, engine_versions=engine_versions({v.engine for v in voices}),
                built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_bytes(root / CORPUS_JSON, json.dumps(meta, indent=1).encode())
    return meta


def _describe(preset: Preset, seed: int, voices: list[Voice], examples: list[Example], general: list[str],
              hard: list[str], batches: list[BankBatch]) -> dict:
    counts: dict = {s: {} for s in SPLITS}
    for ex in examples:
        key = f"{ex.label}/{ex.kind}" if ex.kind == "stream" else ex.label
        counts[ex.split][key] = counts[ex.split].get(key, 0) + 1
    kinds = {k: sum(1 for e in examples if e.kind == k) for k in ("clip", "stream", "silence")}
    return {
        "format": FORMAT_VERSION,
        "preset": preset.name,
        "seed": seed,
        "examples": len(examples),
        "kinds": kinds,
        "counts": counts,
        "voices": {v.id: v.split for v in voices},
        "prosodies": {f"{b.voice.id}/p{b.prosody_index}": [b.prosody.rate, b.prosody.pitch] for b in batches},
        "bank_utterances": sum(len(b.words) for b in batches),
        "vocabulary": {"general": len(general), "hard_negatives": len(hard)},
        "preset_config": preset.to_dict(),
    }
