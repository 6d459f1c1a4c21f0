"""Helpers for the export tests: a tiny real-speech corpus (espeak-ng), a small model whose outputs cross θ,
and the bundled checkpoint with a recording it answers."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from firstspike.model.classifier import KeywordSpotter, ModelConfig
from firstspike.model.data.audio import load_wav
from firstspike.model.labels import task_labels

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CHECKPOINT = ROOT / "models" / "default" / "checkpoint.pt"
YES = ROOT / "samples" / "yes.wav"
RATE = 16000
WORDS = ("yes", "no", "left", "stop", "house")
VOICES = ("en-us", "en+f3")


def _espeak(word: str, voice: str, tmp: Path) -> np.ndarray:
    wav = tmp / f"{word}-{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), word], check=True, capture_output=True)
    audio, rate = sf.read(wav, dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def build_corpus(root: Path, scratch: Path) -> Path:
    """Single words, one 3 s stream (noise, other words, keyword) and one silence clip, split 'test'."""
    rng = np.random.default_rng(7)
    rows = []
    for voice in VOICES:
        for word in WORDS:
            audio = _espeak(word, voice, scratch)
            name = f"clips/{word}-{voice.replace('+', '_')}.wav"
            rows.append((name, word, audio))
    stream = np.concatenate([0.01 * rng.standard_normal(RATE // 2).astype(np.float32), rows[4][2], rows[1][2],
                             0.01 * rng.standard_normal(RATE // 3).astype(np.float32), rows[0][2]])
    rows.append(("streams/house-no-yes.wav", "yes", stream))
    rows.append(("silence/quiet.wav", "_silence_", 0.003 * rng.standard_normal(RATE).astype(np.float32)))
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        for name, label, audio in rows:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            sf.write(root / name, audio, RATE, subtype="PCM_16")
            writer.writerow([name, label, "test"])
    return root


def spiky_model(hidden: int = 24, layers: int = 1, seed: int = 0, head: str = "softmax",
                pcen: bool = False, keep_logmel: bool = False) -> KeywordSpotter:
    """An untrained sc12 model with a sharpened head, so first spikes happen at varied frames."""
    labels, firing = task_labels("sc12")
    torch.manual_seed(seed)
    model = KeywordSpotter(ModelConfig(labels, firing, hidden=hidden, layers=layers, threshold=0.5, head=head,
                                       pcen=pcen, keep_logmel=keep_logmel)).eval()
    with torch.no_grad():
        # PCEN features sit near 0-2, log-mels near -6
        logmel_mean, logmel_std = torch.full((40,), -6.0), torch.full((40,), 3.0)
        pcen_mean, pcen_std = torch.full((40,), 0.5), torch.full((40,), 0.5)
        if not pcen:
            model.set_normalisation(logmel_mean, logmel_std)
        elif keep_logmel:
            model.set_normalisation(torch.cat([logmel_mean, pcen_mean]), torch.cat([logmel_std, pcen_std]))
        else:
            model.set_normalisation(pcen_mean, pcen_std)
        model.classifier.head.weight.mul_(12.0)
    return model


def yes_hops() -> np.ndarray:
    """samples/yes.wav as [1, whole hops of 160 samples]: one stream for `parity.stream_onnx`."""
    audio = np.asarray(load_wav(YES), np.float32)
    return audio[None, : audio.size // 160 * 160]


def first_spike(probs: np.ndarray, info) -> tuple[int, str]:
    """(frame, label) of the first firing class to reach θ; (-1, last frame's arg-max) if none does."""
    firing = [info.labels.index(label) for label in info.firing_labels]
    for frame, p in enumerate(probs):
        best = max(firing, key=lambda k: p[k])
        if p[best] >= info.threshold:
            return frame, info.labels[best]
    return -1, info.labels[int(probs[-1].argmax())]
