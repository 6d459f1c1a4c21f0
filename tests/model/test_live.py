"""The live view of keyword clips: each clip followed by its own background, decided only by a spike."""

import numpy as np

from firstspike.model.live import QUIET_DBFS, with_background_tail


def test_tail_loops_the_background_before_the_word():
    rate = 16000
    background = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.01  # 0.5 s
    word = np.ones(4000, np.float32)
    clip = np.concatenate([background, word])
    out = with_background_tail(clip, onset_ms=500.0, sample_rate=rate, tail_s=1.0, seed=0)
    assert out.dtype == np.float32 and len(out) == len(clip) + rate
    assert np.array_equal(out[: len(clip)], clip)
    kept = 8000 - 800  # the 50 ms before the measured onset stay out of the loop
    assert np.array_equal(out[len(clip): len(clip) + kept], background[:kept])
    assert np.array_equal(out[len(clip) + kept: len(clip) + 2 * kept], background[:kept])
    assert not np.any(out[len(clip):] == 1.0)  # the word itself is never looped


def test_tail_without_enough_background_is_quiet_noise_and_deterministic():
    clip = np.ones(16000, np.float32)
    first = with_background_tail(clip, onset_ms=20.0, sample_rate=16000, tail_s=0.5, seed=3)
    again = with_background_tail(clip, onset_ms=20.0, sample_rate=16000, tail_s=0.5, seed=3)
    assert np.array_equal(first, again) and len(first) == 24000
    level_db = 20 * np.log10(np.sqrt(np.mean(first[16000:] ** 2)))
    assert abs(level_db - QUIET_DBFS) < 1.0
