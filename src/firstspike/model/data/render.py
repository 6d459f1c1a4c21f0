"""Render one corpus example (clip, stream or silence) from the bank of clean TTS words.

Every random choice comes from a generator seeded by (corpus seed, example index), so an example
is the same bytes whichever worker renders it and whether or not the run was resumed.
Onset and offset are measured on the clean word before any noise, then moved into the final
timeline.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firstspike.model.data import augment
from firstspike.model.data.audio import SAMPLE_RATE, load_wav, speech_bounds
from firstspike.model.data.corpus import Channel
from firstspike.model.labels import SC35_WORDS, SILENCE, UNKNOWN

MS = SAMPLE_RATE // 1000
CLIP_S, LEAD_IN_CLIP_S = 1.0, 1.5
NOISE_KINDS = ("white", "pink", "brown", "hum", "babble")
NOISE_WEIGHTS = (0.15, 0.3, 0.15, 0.1, 0.3)


@dataclass(frozen=True)
class BankEntry:
    """One clean TTS utterance of one word by one voice in one prosody."""

    word: str
    voice: str
    engine: str
    split: str
    path: str  # relative to the corpus folder
    hard: bool = False  # a hard-negative unknown word


@dataclass(frozen=True)
class Example:
    index: int
    kind: str  # clip | stream | silence
    label: str  # the Speech Commands word, `_unknown_` or `_silence_`
    split: str


@dataclass
class Rendered:
    audio: np.ndarray
    word: str
    voice: str
    engine: str
    onset_ms: float | None
    offset_ms: float | None
    channel: Channel


class Bank:
    """Lookup of clean words by split and engine, with a small per-process cache of decoded audio."""

    def __init__(self, root: Path, entries: list[BankEntry], cache_size: int = 3000):
        self.root, self.cache_size = Path(root), cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.keywords: dict[tuple[str, str], dict[str, list[BankEntry]]] = {}
        self.unknown: dict[tuple[str, bool], dict[str, list[BankEntry]]] = {}
        self.unknown_by_voice: dict[str, dict[str, list[BankEntry]]] = {}
        for e in entries:
            if e.word in SC35_WORDS:
                self.keywords.setdefault((e.split, e.word), {}).setdefault(e.engine, []).append(e)
            else:
                self.unknown.setdefault((e.split, e.hard), {}).setdefault(e.engine, []).append(e)
                self.unknown_by_voice.setdefault(e.voice, {}).setdefault(e.engine, []).append(e)

    def load(self, entry: BankEntry) -> np.ndarray:
        audio = self._cache.get(entry.path)
        if audio is None:
            audio = load_wav(self.root / entry.path)
            self._cache[entry.path] = audio
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(entry.path)
        return audio

    def keyword(self, split: str, word: str, rng: np.random.Generator) -> BankEntry:
        return choose_by_engine(self.keywords[(split, word)], rng)

    def unknown_word(self, split: str, hard: bool, rng: np.random.Generator, voice: str | None = None) -> BankEntry:
        choices = self.unknown_by_voice.get(voice, {}) if voice else {}
        if not choices:
            choices = self.unknown.get((split, hard)) or self.unknown.get((split, not hard)) or {}
        if not choices:
            raise ValueError(f"the bank has no unknown words for split {split!r}")
        return choose_by_engine(choices, rng)


# espeak-ng has ~100 voices, flite 5 and festival 3: drawing voices uniformly would hide the two
# most natural engines, so the engine is drawn first.
ENGINE_WEIGHTS = {"espeak-ng": 0.7, "flite": 0.15, "festival": 0.15}


def choose_by_engine(by_engine: dict[str, list[BankEntry]], rng: np.random.Generator) -> BankEntry:
    engines = sorted(by_engine)
    weights = np.array([ENGINE_WEIGHTS.get(e, 0.1) for e in engines])
    pool = by_engine[engines[int(rng.choice(len(engines), p=weights / weights.sum()))]]
    return pool[int(rng.integers(len(pool)))]


# -- building blocks ----------------------------------------------------------------------------
def perturb_speaker(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new 'speaker' from a clean TTS word: speed (VTL + tempo + pitch), EQ, fixed level."""
    factor = augment.SPEED_FACTORS[int(rng.integers(len(augment.SPEED_FACTORS)))]
    out = augment.change_speed(audio, factor)
    if rng.random() < 0.7:
        out = augment.random_eq(out, rng)
    return augment.normalise(out, -20.0)


def clean_bounds(word: np.ndarray) -> tuple[int, int]:
    """Speech span of a clean word in samples (padding with silence so the floor is digital zero)."""
    pad = 100 * MS
    bounds = speech_bounds(np.pad(word, pad), below_peak_db=35.0)
    if bounds is None:
        return 0, word.size
    onset = max(0, int(bounds[0] * MS) - pad)
    offset = min(word.size, int(bounds[1] * MS) - pad)
    return onset, max(offset, onset + MS)


def _fit_word(word: np.ndarray, room: int) -> np.ndarray:
    """Speed a word up (never crop it) until it fits into `room` samples, if a speed factor can."""
    for factor in sorted(f for f in augment.SPEED_FACTORS if f > 1):
        if word.size <= room:
            break
        word = augment.change_speed(word, factor) if word.size / factor <= room else word
    return word


def _babble(n: int, bank: Bank, split: str, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros(n, np.float32)
    for _ in range(int(rng.integers(3, 7))):
        word = augment.normalise(bank.load(bank.unknown_word(split, bool(rng.random() < 0.5), rng)), -20.0)
        start = int(rng.integers(-word.size // 2, max(1, n - word.size // 2)))
        a, b = max(0, start), min(n, start + word.size)
        if b > a:
            out[a:b] += word[a - start : b - start] * augment.db_to_amp(rng.uniform(-6, 3))
    return out if np.any(out) else coloured_noise(n, "pink", rng)


_NOISE_LOOPS: dict[str, np.ndarray] = {}
NOISE_LOOP_S = 60


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of a fixed 60 s noise recording per colour: as varied, far cheaper than new noise."""
    if colour not in _NOISE_LOOPS:
        seed = [0, 99, ("white", "pink", "brown").index(colour)]
        _NOISE_LOOPS[colour] = augment.coloured_noise(NOISE_LOOP_S * SAMPLE_RATE, colour, np.random.default_rng(seed))
    loop = _NOISE_LOOPS[colour]
    start = int(rng.integers(loop.size))
    out = np.take(loop, np.arange(start, start + n), mode="wrap")
    return out if rng.random() < 0.5 else -out


def background(n: int, kind: str, bank: Bank, split: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "babble":
        return _babble(n, bank, split, rng)
    if kind == "hum":  # with a little hiss
        mix = augment.hum(n, rng) + 0.1 * coloured_noise(n, "pink", rng)
        return (mix / (np.std(mix) + 1e-12)).astype(np.float32)
    return coloured_noise(n, kind, rng)


def finish_channel(clean: np.ndarray, span: tuple[int, int], bank: Bank, split: str,
                   rng: np.random.Generator) -> tuple[np.ndarray, Channel]:
    """Room, background noise at a random SNR, sometimes a telephone line, then a random level."""
    reverb = rng.random() < 0.3
    mix = augment.room_reverb(clean, rng) if reverb else clean.copy()
    if rng.random() < 0.85:
        kind = str(rng.choice(NOISE_KINDS, p=NOISE_WEIGHTS))
        snr = rng.uniform(5, 25) if kind == "babble" else rng.uniform(0, 30)
    else:  # clean speech, but never digital silence: real microphones always have a floor
        kind, snr = "white", rng.uniform(55, 75)
    mix = augment.mix_at_snr(mix, background(mix.size, kind, bank, split, rng), snr, span)
    telephone = rng.random() < 0.08
    if telephone:
        mix = augment.telephone(mix, rng)
    gain = augment.db_to_amp(rng.uniform(-38, -12) - augment.loudness_db(clean[span[0] : span[1]]))
    return augment.fit_peak(mix * gain), Channel(kind, float(snr), bool(reverb), bool(telephone))


# -- examples -----------------------------------------------------------------------------------
def _pick(example: Example, bank: Bank, hard_share: float, rng: np.random.Generator) -> BankEntry:
    if example.label == UNKNOWN:
        return bank.unknown_word(example.split, bool(rng.random() < hard_share), rng)
    return bank.keyword(example.split, example.label, rng)


def render_clip(example: Example, bank: Bank, hard_share: float, rng: np.random.Generator) -> Rendered:
    entry = _pick(example, bank, hard_share, rng)
    word = perturb_speaker(bank.load(entry), rng)
    lead_in = rng.random() < 0.2  # a long lead-in of silence or noise before the word
    n = int((LEAD_IN_CLIP_S if lead_in else CLIP_S) * SAMPLE_RATE)
    word = _fit_word(word, n - 40 * MS)
    n = max(n, word.size + 40 * MS)
    if lead_in:
        low = min(300 * MS, n - word.size - 20 * MS)
        start = int(rng.integers(low, n - word.size - 20 * MS + 1))
    else:
        start = int(rng.integers(0, n - word.size + 1))
    a, b = clean_bounds(word)
    clean = np.zeros(n, np.float32)
    clean[start : start + word.size] = word
    span = (start + a, start + b)
    audio, channel = finish_channel(clean, span, bank, example.split, rng)
    return Rendered(audio, entry.word, entry.voice, entry.engine, span[0] / MS, span[1] / MS, channel)


def render_stream(example: Example, bank: Bank, hard_share: float, rng: np.random.Generator) -> Rendered:
    """3–10 s of other words, pauses and noise, then the keyword and a short tail."""
    entry = _pick(example, bank, hard_share, rng)
    word = perturb_speaker(bank.load(entry), rng)
    n = int(rng.uniform(3.0, 10.0) * SAMPLE_RATE)
    tail = int(rng.uniform(0.15, 0.5) * SAMPLE_RATE)
    start = n - tail - word.size
    clean = np.zeros(n, np.float32)
    same_voice = entry.voice if rng.random() < 0.5 else None
    t, room, misses = int(rng.uniform(0.0, 0.8) * SAMPLE_RATE), start - int(rng.uniform(0.1, 0.6) * SAMPLE_RATE), 0
    while misses < 3:
        filler_entry = bank.unknown_word(example.split, bool(rng.random() < hard_share), rng, voice=same_voice)
        if filler_entry.word == entry.word:
            misses += 1
            continue
        filler = perturb_speaker(bank.load(filler_entry), rng) * augment.db_to_amp(rng.uniform(-6, 3))
        if t + filler.size > room:
            misses += 1
            continue
        clean[t : t + filler.size] = filler
        pause = rng.uniform(0.8, 2.0) if rng.random() < 0.15 else rng.uniform(0.05, 0.6)
        t += filler.size + int(pause * SAMPLE_RATE)
    clean[start : start + word.size] = word
    a, b = clean_bounds(word)
    span = (start + a, start + b)
    audio, channel = finish_channel(clean, span, bank, example.split, rng)
    return Rendered(audio, entry.word, entry.voice, entry.engine, span[0] / MS, span[1] / MS, channel)


def render_silence(example: Example, bank: Bank, rng: np.random.Generator) -> Rendered:
    """Background only: coloured noise, hum or near-digital silence, at a random level and colour."""
    n = int(CLIP_S * SAMPLE_RATE)
    kind = str(rng.choice(("white", "pink", "brown", "hum", "quiet"), p=(0.2, 0.3, 0.2, 0.15, 0.15)))
    noise = coloured_noise(n, "white", rng) if kind == "quiet" else background(n, kind, bank, example.split, rng)
    if rng.random() < 0.4:
        noise = augment.random_eq(noise, rng)
    level = rng.uniform(-85, -70) if kind == "quiet" else rng.uniform(-65, -25)
    audio = noise * augment.db_to_amp(level) / max(float(np.std(noise)), 1e-9)
    return Rendered(augment.fit_peak(audio), "", "", "noise", None, None, Channel(kind, None, False, False))


def render(example: Example, bank: Bank, seed: int, hard_share: float) -> Rendered:
    rng = np.random.default_rng([seed, 11, example.index])
    if example.kind == "silence" or example.label == SILENCE:
        return render_silence(example, bank, rng)
    if example.kind == "stream":
        return render_stream(example, bank, hard_share, rng)
    return render_clip(example, bank, hard_share, rng)
