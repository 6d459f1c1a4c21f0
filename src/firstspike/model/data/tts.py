"""Word synthesis with the Debian-main TTS engines: espeak-ng, flite and festival.

Each call synthesises a batch of words in one voice and one prosody and returns 16 kHz mono
float32 audio per word, trimmed to the speech with a short margin. Process start-up dominates the
cost of a single word, so espeak-ng speaks the whole batch in one SSML document with long breaks
(split again on the silences), and festival runs one Scheme script per batch.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firstspike.model.data.audio import SAMPLE_RATE, AudioError, frame_energy_db, read_wav_any_rate, resample
from firstspike.model.data.voices import ESPEAK, FESTIVAL, FLITE, Voice

APT_PACKAGES = {
    ESPEAK: "espeak-ng",
    FLITE: "flite",
    FESTIVAL: "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
}
FESTIVAL_VOICE_PACKAGES = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
}
FESTIVAL_VOICE_ROOTS = (Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices"))
FLITE_F0_MEAN = {"kal": 105.0, "kal16": 105.0, "awb": 110.0, "rms": 100.0, "slt": 170.0}
MARGIN_MS = 40.0
_BREAK_MS = 1200
_TIMEOUT_S = 300


class EngineMissing(RuntimeError):
    """A TTS engine or one of its voices is not installed."""


class TTSError(RuntimeError):
    """An engine ran but did not produce the expected audio."""


@dataclass(frozen=True)
class Prosody:
    """Speaking rate and pitch, relative to the voice's default (1.0 = unchanged)."""

    rate: float = 1.0
    pitch: float = 1.0


def check_engines(engines: set[str], festival_voices: set[str] = frozenset()) -> None:
    """Raise EngineMissing naming the apt packages to install, before any work starts."""
    missing = [engine for engine in sorted(engines) if shutil.which(engine) is None]
    if missing:
        packages = " ".join(APT_PACKAGES[e] for e in missing)
        raise EngineMissing(
            f"TTS engine{'s' if len(missing) > 1 else ''} not found on PATH: {', '.join(missing)}.\n"
            f"Install with:  sudo apt-get install {packages}"
        )
    absent = [v for v in sorted(festival_voices) if not any((root / lang / v).is_dir()
              for root in FESTIVAL_VOICE_ROOTS for lang in ("english", "us"))]
    if FESTIVAL in engines and absent:
        packages = [FESTIVAL_VOICE_PACKAGES[v] for v in absent if v in FESTIVAL_VOICE_PACKAGES]
        unknown = [v for v in absent if v not in FESTIVAL_VOICE_PACKAGES]
        hint = f"\nInstall with:  sudo apt-get install {' '.join(packages)}" if packages else ""
        hint += f"\nNo Debian package known for: {', '.join(unknown)}" if unknown else ""
        raise EngineMissing(f"festival voices not installed: {', '.join(absent)}.{hint}")


def engine_versions(engines: set[str]) -> dict[str, str]:
    """First meaningful line of each engine's version output, for corpus.json."""
    flags = {ESPEAK: ["--version"], FLITE: ["--version"], FESTIVAL: ["--version"]}
    versions = {}
    for engine in sorted(engines):
        try:
            out = subprocess.run([engine, *flags[engine]], capture_output=True, text=True, timeout=30)
            lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
            versions[engine] = next((l for l in lines if "version" in l.lower() or ":" in l), lines[0] if lines else "")
        except (OSError, subprocess.SubprocessError) as err:
            versions[engine] = f"unknown ({err})"
    return versions


def trim_to_speech(audio: np.ndarray, sr: int = SAMPLE_RATE, margin_ms: float = MARGIN_MS) -> np.ndarray:
    """Cut leading and trailing silence of clean TTS audio, keeping a short margin."""
    energy = frame_energy_db(audio, sr)
    active = np.flatnonzero(energy > energy.max() - 50.0)
    hop = sr // 100
    margin = int(sr * margin_ms / 1000)
    start, end = active[0] * hop - margin, (active[-1] + 2) * hop + margin
    # Pad where the engine starts or stops speaking at the very edge of its output.
    return np.pad(audio[max(0, start) : min(audio.size, end)], (max(0, -start), max(0, end - audio.size)))


def _run(cmd: list[str], what: str, **kwargs) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, **kwargs)
    except FileNotFoundError:
        raise EngineMissing(f"{cmd[0]} is not installed; install with: sudo apt-get install "
                            f"{APT_PACKAGES.get(cmd[0], cmd[0])}") from None
    if result.returncode != 0:
        raise TTSError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")


def _load_16k(path: Path) -> np.ndarray:
    audio, rate = read_wav_any_rate(path, lenient_size=True)
    return resample(audio, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else audio


def _split_on_breaks(audio: np.ndarray, rate: int, count: int) -> list[np.ndarray] | None:
    """Cut a batch rendering at its long silences into 16 kHz words; None unless there are `count`."""
    energy = frame_energy_db(audio, rate)
    voiced = energy > energy.max() - 55.0
    hop, min_gap = rate // 100, int(0.6 * _BREAK_MS / 10)
    pieces, start, silent_run = [], None, 0
    for t, is_voiced in enumerate(voiced):
        if is_voiced:
            if start is None:
                start = t
            silent_run, last_voiced = 0, t
        elif start is not None:
            silent_run += 1
            if silent_run >= min_gap:
                pieces.append((start, last_voiced))
                start = None
    if start is not None:
        pieces.append((start, last_voiced))
    if len(pieces) != count:
        return None
    return [trim_to_speech(resample(audio[max(0, (a - 5) * hop) : (b + 7) * hop], rate, SAMPLE_RATE))
            for a, b in pieces]


def _espeak(voice: Voice, prosody: Prosody, words: list[str], tmp: Path) -> dict[str, np.ndarray]:
    args = ["espeak-ng", "-v", voice.name, "-s", str(int(round(175 * prosody.rate))),
            "-p", str(int(np.clip(round(50 * prosody.pitch), 0, 99)))]
    if len(words) > 1:
        ssml = "<speak>" + "".join(f'{w}.<break time="{_BREAK_MS}ms"/>' for w in words) + "</speak>"
        (tmp / "batch.ssml").write_text(ssml)
        _run([*args, "-m", "-w", str(tmp / "batch.wav"), "-f", str(tmp / "batch.ssml")], f"espeak-ng {voice.name}")
        audio, rate = read_wav_any_rate(tmp / "batch.wav", lenient_size=True)
        pieces = _split_on_breaks(audio, rate, len(words))
        if pieces is not None:
            return dict(zip(words, pieces))
    out = {}  # one process per word: slower, but never mis-splits
    for word in words:
        _run([*args, "-w", str(tmp / "w.wav"), word], f"espeak-ng {voice.name} '{word}'")
        out[word] = trim_to_speech(_load_16k(tmp / "w.wav"))
    return out


def _flite(voice: Voice, prosody: Prosody, words: list[str], tmp: Path) -> dict[str, np.ndarray]:
    f0 = FLITE_F0_MEAN.get(voice.name, 110.0) * prosody.pitch
    out = {}
    for word in words:
        _run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1.0 / prosody.rate:.3f}",
              "--setf", f"int_f0_target_mean={f0:.1f}", "-t", word, "-o", str(tmp / "w.wav")],
             f"flite {voice.name} '{word}'")
        out[word] = trim_to_speech(_load_16k(tmp / "w.wav"))
    return out


def _festival(voice: Voice, prosody: Prosody, words: list[str], tmp: Path) -> dict[str, np.ndarray]:
    lines = [f"(voice_{voice.name})", f"(Parameter.set 'Duration_Stretch {1.0 / prosody.rate:.3f})"]
    lines += [f'(utt.save.wave (utt.synth (Utterance Text "{w}")) "{tmp / f"{i}.wav"}" \'riff)'
              for i, w in enumerate(words)]
    (tmp / "batch.scm").write_text("\n".join(lines) + "\n")
    _run(["festival", "-b", str(tmp / "batch.scm")], f"festival {voice.name}")
    out = {}
    for i, word in enumerate(words):
        try:
            out[word] = trim_to_speech(_load_16k(tmp / f"{i}.wav"))
        except AudioError as err:
            raise TTSError(f"festival {voice.name} produced no audio for '{word}': {err}") from None
    return out


_ENGINES = {ESPEAK: _espeak, FLITE: _flite, FESTIVAL: _festival}


def synthesize(voice: Voice, prosody: Prosody, words: list[str]) -> dict[str, np.ndarray]:
    """Speak each word (lowercase letters only) in `voice`; 16 kHz float32 per word."""
    bad = [w for w in words if not (w.isascii() and w.isalpha() and w.islower())]
    if bad:
        raise ValueError(f"words must be lowercase ASCII letters, got {bad[:5]}")
    with tempfile.TemporaryDirectory(prefix="firstspike-tts-") as tmp:
        out = _ENGINES[voice.engine](voice, prosody, list(words), Path(tmp))
    silent = [w for w, a in out.items() if a.size == 0 or float(np.abs(a).max()) < 1e-3]
    if silent:
        raise TTSError(f"{voice.id} produced silence for {silent[:5]}")
    return out
