"""Feature-space speaker and channel augmentation, checked on features of real synthetic signals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from firstspike.model.feature_augment import NEPER_PER_DB, FeatureAugment, spec_augment, tilt_channels, warp_speakers
from firstspike.model.frontend import LOG_FLOOR, LogMelFrontend, mel_filterbank

SAMPLE_RATE = 16000


@pytest.fixture(scope="module")
def frontend() -> LogMelFrontend:
    return LogMelFrontend(SAMPLE_RATE)


def tone_features(frontend: LogMelFrontend, hz: float) -> torch.Tensor:
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    return frontend(torch.tensor(0.5 * np.sin(2 * math.pi * hz * t), dtype=torch.float32)[None])


def noise_features(frontend: LogMelFrontend, batch: int = 3) -> torch.Tensor:
    audio = 0.1 * np.random.default_rng(0).standard_normal((batch, SAMPLE_RATE // 2))
    return frontend(torch.tensor(audio, dtype=torch.float32))


def test_band_centres_are_where_the_filters_peak(frontend):
    bins_hz = np.linspace(0, SAMPLE_RATE / 2, frontend.window // 2 + 1)
    peaks = bins_hz[mel_filterbank(SAMPLE_RATE, frontend.window, frontend.n_mels).argmax(axis=0)]
    bin_width = bins_hz[1]
    assert np.all(np.abs(frontend.band_centres_hz - peaks) <= bin_width / 2 + 1e-9)


def test_warp_by_one_changes_nothing(frontend):
    feats = noise_features(frontend)
    warped = warp_speakers(feats, torch.ones(len(feats)), frontend.band_centres_hz)
    torch.testing.assert_close(warped, feats, rtol=0, atol=1e-5)


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_warp_moves_a_tone_like_a_scaled_voice(frontend, alpha):
    """A 1.5 kHz tone warped by α peaks in the band where a tone at α × 1.5 kHz peaks."""
    warped = warp_speakers(tone_features(frontend, 1500.0), torch.tensor([alpha]), frontend.band_centres_hz)
    expected = tone_features(frontend, 1500.0 * alpha)
    frame = warped.shape[1] // 2
    assert int(warped[0, frame].argmax()) == int(expected[0, frame].argmax())
    assert int(warped[0, frame].argmax()) != int(tone_features(frontend, 1500.0)[0, frame].argmax())


def test_each_sequence_gets_its_own_warp(frontend):
    feats = tone_features(frontend, 1500.0).repeat(2, 1, 1)
    warped = warp_speakers(feats, torch.tensor([0.9, 1.1]), frontend.band_centres_hz)
    frame = warped.shape[1] // 2
    assert warped[0, frame].argmax() < warped[1, frame].argmax()


def test_channel_tilt_is_a_smooth_bounded_curve_that_spares_silence(frontend):
    feats = noise_features(frontend)
    feats[:, :5] = math.log(LOG_FLOOR)  # digital silence at the start
    tilted = tilt_channels(feats, torch.Generator().manual_seed(1), gain_db=6.0, eq_db=6.0)
    assert torch.equal(tilted[:, :5], feats[:, :5])
    change_db = (tilted[:, 5:] - feats[:, 5:]) / NEPER_PER_DB
    # The same curve at every frame of a sequence, within ±(gain + 2 × eq) dB, and smooth across bands.
    torch.testing.assert_close(change_db, change_db[:, :1].expand_as(change_db), rtol=0, atol=1e-3)
    assert change_db.abs().max() <= 18.0 + 1e-3
    assert (change_db[:, 0, 1:] - change_db[:, 0, :-1]).abs().max() < 2.0
    assert not torch.allclose(change_db[0, 0], change_db[1, 0])  # sequences differ


def test_augment_is_reproducible_and_off_when_zero(frontend):
    feats = noise_features(frontend)
    centres = frontend.band_centres_hz
    on = FeatureAugment(warp=0.1, gain_db=6.0, eq_db=6.0)
    a = on.augment_raw(feats, centres, torch.Generator().manual_seed(7))
    b = on.augment_raw(feats, centres, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and not torch.allclose(a, feats)
    off = FeatureAugment()  # the default: everything off
    assert off.augment_raw(feats, centres, torch.Generator().manual_seed(7)) is feats


def test_spec_augment_masks_bands_and_frames_and_time_masks_can_be_left_out():
    """Masked cells are zero (the mean of normalised features); `--no-time-masks` keeps every frame."""
    feats = torch.ones(64, 100, 40)
    lengths = torch.full((64,), 100)
    both = spec_augment(feats, lengths, torch.Generator().manual_seed(0))
    assert (both == 0).any(dim=1).any() and (both == 0).all(dim=2).any()  # some bands and some whole frames
    assert torch.equal(feats, torch.ones(64, 100, 40))  # the input is left alone
    freq_only = spec_augment(feats, lengths, torch.Generator().manual_seed(0), time_masks=0)
    assert (freq_only == 0).any() and not (freq_only == 0).all(dim=2).any()  # bands masked, no frame wholly
    assert ((freq_only == 0).all(dim=1) == (freq_only == 0).any(dim=1)).all()  # a masked band spans every frame
