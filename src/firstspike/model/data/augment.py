"""Cheap numpy perturbations that turn a few TTS voices into many speakers and channels.

Speaker side (applied to the clean word): speed and vocal-tract length (by resampling), random EQ,
level. Channel side (applied to the finished mix): background noise at a
chosen SNR, room reverb, telephone band, gain. All randomness comes from the caller's generator,
so a clip is a pure function of its seed.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from firstspike.model.data.audio import SAMPLE_RATE, is_smooth, resample

# Speed factors whose numerator and denominator have only small prime factors (fast FFTs).
SPEED_FACTORS = tuple(Fraction(a, b) for a, b in (
    (7, 8), (9, 10), (15, 16), (24, 25), (35, 36), (1, 1), (36, 35), (25, 24), (16, 15), (10, 9), (8, 7),
))


def fast_len(n: int) -> int:
    while not is_smooth(n):
        n += 1
    return n


def db_to_amp(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def rms_db(audio: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(np.asarray(audio, np.float64) ** 2) + 1e-12))


# -- speaker ----------------------------------------------------------------------------------
def change_speed(audio: np.ndarray, factor: Fraction) -> np.ndarray:
    """Play `factor` times faster by resampling, like tape speed.

    This is the resample-based vocal-tract-length perturbation: formants, pitch and tempo all scale
    by `factor`. Combined with the TTS engine's own rate and pitch settings, the three vary
    independently (formants x s, pitch x p*s, tempo x r*s).
    """
    return resample(audio, factor.numerator * 1000, factor.denominator * 1000)


def apply_response(audio: np.ndarray, gain: "callable") -> np.ndarray:
    """Filter by a zero-phase magnitude response `gain(freq_hz) -> linear gain`."""
    n = fast_len(audio.size + 1024)
    spectrum = np.fft.rfft(audio, n)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    return np.fft.irfft(spectrum * gain(freqs), n)[: audio.size].astype(np.float32)


def random_eq(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few random bells and a tilt (up to about ±8 dB), sometimes a high- or low-pass."""
    bells = [(rng.uniform(np.log2(150), np.log2(6000)), rng.uniform(-8, 8), rng.uniform(0.3, 1.5))
             for _ in range(int(rng.integers(1, 4)))]
    tilt = rng.uniform(-2.0, 2.0)  # dB per octave around 1 kHz
    highpass = rng.uniform(60, 300) if rng.random() < 0.3 else None
    lowpass = rng.uniform(3500, 7500) if rng.random() < 0.3 else None

    def gain(f: np.ndarray) -> np.ndarray:
        octave = np.log2(np.maximum(f, 20.0))
        db = tilt * (octave - np.log2(1000.0))
        for centre, g, width in bells:
            db = db + g * np.exp(-0.5 * ((octave - centre) / width) ** 2)
        lin = 10.0 ** (db / 20.0)
        if highpass:
            lin = lin / np.sqrt(1.0 + (highpass / np.maximum(f, 1.0)) ** 4)
        if lowpass:
            lin = lin / np.sqrt(1.0 + (f / lowpass) ** 8)
        return lin

    return apply_response(audio, gain)


def loudness_db(audio: np.ndarray) -> float:
    """RMS of the loudest 100 ms in dBFS: the level of the speech, not of the pauses around it."""
    win = min(SAMPLE_RATE // 10, audio.size)
    if win == 0:
        return -120.0
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(audio, np.float64) ** 2)])
    return float(10.0 * np.log10(np.max(energy[win:] - energy[:-win]) / win + 1e-12))


def normalise(audio: np.ndarray, target_db: float) -> np.ndarray:
    """Scale so that `loudness_db` becomes `target_db` (silence is left alone)."""
    level = loudness_db(audio)
    return (audio * db_to_amp(target_db - level)).astype(np.float32) if level > -100.0 else audio


# -- noise ------------------------------------------------------------------------------------
def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise with unit RMS."""
    white = rng.standard_normal(n)
    if colour != "white":
        size = fast_len(n)
        spectrum = np.fft.rfft(white, size)
        f = np.maximum(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE), 20.0)
        spectrum /= np.sqrt(f) if colour == "pink" else f
        white = np.fft.irfft(spectrum, size)[:n]
    return (white / (np.std(white) + 1e-12)).astype(np.float32)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum with random harmonics, unit RMS: a common real-world 'silence'."""
    t = np.arange(n) / SAMPLE_RATE
    base = 50.0 if rng.random() < 0.5 else 60.0
    sig = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 6))
    return (sig / (np.std(sig) + 1e-12)).astype(np.float32)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, speech: tuple[int, int]) -> np.ndarray:
    """Add `noise` so that speech power (over the `speech` sample span) / noise power = snr_db."""
    a, b = speech
    speech_power = float(np.mean(np.asarray(signal[a:b], np.float64) ** 2)) if b > a else 0.0
    noise_power = float(np.mean(np.asarray(noise, np.float64) ** 2)) + 1e-12
    scale = np.sqrt(speech_power / noise_power / 10.0 ** (snr_db / 10.0)) if speech_power > 0 else 0.0
    return (signal + scale * noise).astype(np.float32)


# -- channel ----------------------------------------------------------------------------------
def room_reverb(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room: direct path plus exponentially decaying noise (RT60 0.15–0.8 s)."""
    rt60 = rng.uniform(0.15, 0.8)
    length = int(SAMPLE_RATE * min(rt60, 0.6))
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)
    pre_delay = int(rng.uniform(0.002, 0.02) * SAMPLE_RATE)
    tail[:pre_delay] = 0.0
    cutoff = rng.uniform(2000, 7000)  # walls absorb the highs
    tail = apply_response(tail.astype(np.float32), lambda f: 1.0 / np.sqrt(1.0 + (f / cutoff) ** 2))
    drr = db_to_amp(rng.uniform(-3, 12))  # direct-to-reverberant ratio
    ir = tail / (np.sqrt(np.sum(tail**2)) + 1e-12)
    ir[0] += drr
    n = fast_len(audio.size + length)
    wet = np.fft.irfft(np.fft.rfft(audio, n) * np.fft.rfft(ir, n), n)[: audio.size]
    return (wet * (np.std(audio) / (np.std(wet) + 1e-12))).astype(np.float32)


def telephone(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """300–3400 Hz band, sometimes through an 8 kHz mu-law round trip."""
    band = apply_response(audio, lambda f: 1.0 / np.sqrt((1.0 + (300.0 / np.maximum(f, 1.0)) ** 4)
                                                          * (1.0 + (f / 3400.0) ** 8)))
    if rng.random() < 0.5:
        narrow = resample(band, SAMPLE_RATE, 8000)
        peak = float(np.abs(narrow).max()) + 1e-9
        mu = 255.0
        x = narrow / peak
        coded = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127.0) / 127.0
        narrow = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu * peak
        band = resample(narrow.astype(np.float32), 8000, SAMPLE_RATE)[: audio.size]
        band = np.pad(band, (0, audio.size - band.size))
    return band.astype(np.float32)


def fit_peak(audio: np.ndarray, limit: float = 0.98) -> np.ndarray:
    """Scale down (never up) so no sample clips."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio * (limit / peak)).astype(np.float32) if peak > limit else audio.astype(np.float32)
