"""Shared fixtures: one tiny synthetic corpus, and a tiny Speech Commands copy laid out like the real one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from firstspike.model.data.audio import SAMPLE_RATE, read_wav_any_rate, resample, write_wav
from firstspike.model.data.synth import build_corpus

SC_WORDS = ("yes", "no", "marvin", "up")
SC_SPEAKERS = ("0a1b2c3d", "1f2e3d4c", "2b3c4d5e", "3c4d5e6f")  # speaker ids, one espeak voice each
SC_VOICES = ("en-us+m1", "en-gb+f2", "en-us+klatt", "en-gb-x-rp+m4")
WORD_AT_MS = 300  # where the fixture places each word in its 1 s clip


@pytest.fixture(scope="session")
def sc_layout() -> dict:
    """What the Speech Commands fixture contains, for assertions."""
    return {"words": SC_WORDS, "speakers": SC_SPEAKERS, "word_at_ms": WORD_AT_MS}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "corpus"
    build_corpus(root, "tiny", seed=0, workers=2, progress=False)
    return root


def _espeak_word(word: str, voice: str, tmp: Path) -> np.ndarray:
    out = tmp / "w.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), word], check=True)
    audio, rate = read_wav_any_rate(out, lenient_size=True)
    return resample(audio, rate, SAMPLE_RATE)


@pytest.fixture(scope="session")
def speech_commands_dir(tmp_path_factory) -> Path:
    """v0.02 layout: word folders of 1 s 16 kHz WAVs named <speaker>_nohash_<n>.wav, two lists, noise."""
    root = tmp_path_factory.mktemp("sc") / "speech_commands_v0.02"
    scratch = tmp_path_factory.mktemp("sc_scratch")
    rng = np.random.default_rng(0)
    for word in SC_WORDS:
        for speaker, voice in zip(SC_SPEAKERS, SC_VOICES):
            spoken = _espeak_word(word, voice, scratch)[: SAMPLE_RATE - WORD_AT_MS * 16]
            clip = 0.001 * rng.standard_normal(SAMPLE_RATE).astype(np.float32)
            start = WORD_AT_MS * 16
            clip[start : start + spoken.size] += spoken
            write_wav(root / word / f"{speaker}_nohash_0.wav", clip)
    # speaker 3 is validation, speaker 4 is test, as the real lists keep speakers apart
    (root / "validation_list.txt").write_text("".join(f"{w}/{SC_SPEAKERS[2]}_nohash_0.wav\n" for w in SC_WORDS))
    (root / "testing_list.txt").write_text("".join(f"{w}/{SC_SPEAKERS[3]}_nohash_0.wav\n" for w in SC_WORDS))
    noise = root / "_background_noise_"
    write_wav(noise / "white_noise.wav", 0.1 * rng.standard_normal(10 * SAMPLE_RATE))
    write_wav(noise / "hum.wav", 0.2 * np.sin(2 * np.pi * 50 * np.arange(10 * SAMPLE_RATE) / SAMPLE_RATE))
    (noise / "README.md").write_text("background noise files\n")
    return root
