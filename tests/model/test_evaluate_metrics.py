"""The decision-time metrics of `firstspike evaluate`, on hand-made decisions with known answers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from firstspike.model.data.corpus import Channel, Row
from firstspike.model.evaluate import summarise
from firstspike.model.features import FeatureSet
from firstspike.model.inference import Decisions

LABELS = ["yes", "no", "_silence_", "_unknown_"]
FIRING = ["yes", "no"]
FRAME_MS = 10.0


def _row(label: str, kind: str = "clip", onset: float | None = 300.0, offset: float | None = 600.0) -> Row:
    return Row(path=f"/x/{label}.wav", label=label, word=label, voice="v", engine="espeak-ng", split="test",
               kind=kind, onset_ms=onset, offset_ms=offset, duration_ms=1000.0)


def _features(rows: list[Row]) -> FeatureSet:
    lengths = np.full(len(rows), 100)
    return FeatureSet(feats=np.zeros((int(lengths.sum()), 1), np.float32),
                      offsets=np.concatenate([[0], np.cumsum(lengths)]), rows=rows,
                      targets=np.array([LABELS.index(r.label) for r in rows]),
                      onset_frames=np.full(len(rows), 30), offset_frames=np.full(len(rows), 60),
                      early_targets=np.full(len(rows), LABELS.index("_unknown_")))


def test_word_end_metrics_over_spiked_and_over_every_keyword_clip():
    # Four keyword clips whose word ends at 600 ms: two spike before it (at 400 and 500 ms of audio),
    # one spikes after it (700 ms), one never spikes and is decided at its end (1000 ms).
    # A keyword stream that spikes early and an unknown word are not keyword clips.
    rows = [_row("yes"), _row("no"), _row("yes"), _row("no"), _row("yes", kind="stream"), _row("_unknown_")]
    t_star = np.array([39, 49, 69, 99, 9, 99])
    spiked = np.array([True, True, True, False, True, False])
    dec = Decisions(t_star=t_star, spiked=spiked, predicted=np.array([0, 1, 0, 3, 0, 3]),
                    lengths=np.full(len(rows), 100))
    report = summarise(_features(rows), dec, LABELS, FIRING, FRAME_MS, detail=False)

    strict = report["keyword_decision_minus_offset_ms"]
    assert strict["n"] == 4
    assert strict["median"] == np.median([-200.0, -100.0, 100.0, 400.0]) == 0.0
    assert report["keyword_decided_before_word_end_share"] == 0.5
    # the older figure counts only keyword sequences that spiked, streams included
    assert report["decision_minus_offset_ms"]["n"] == 4
    assert report["decided_before_word_end_share"] == 0.75
    assert report["keyword_decision_ms"]["median"] == 600.0


def test_channel_breakdown_groups_keyword_clips_by_noise_room_and_line():
    # Keyword clips in four conditions, one unknown word and one stream (neither counts), and a clip from
    # a corpus that recorded no channel (skipped, as Speech Commands rows are).
    quiet, loud = Channel("white", 62.0, False, False), Channel("babble", 4.0, False, False)
    room, phone = Channel("pink", 25.0, True, False), Channel("white", 60.0, False, True)
    rows = [replace(_row("yes"), channel=quiet), replace(_row("no"), channel=quiet),
            replace(_row("yes"), channel=loud), replace(_row("no"), channel=room), replace(_row("yes"), channel=phone),
            replace(_row("_unknown_"), channel=loud), replace(_row("yes", kind="stream"), channel=loud), _row("no")]
    predicted = np.array([0, 1, 1, 1, 3, 3, 1, 0])  # right: both quiet clips and the room clip
    dec = Decisions(t_star=np.full(len(rows), 99), spiked=np.zeros(len(rows), bool), predicted=predicted,
                    lengths=np.full(len(rows), 100))
    channels = summarise(_features(rows), dec, LABELS, FIRING, FRAME_MS)["keyword_accuracy_by_channel"]

    assert channels["snr"] == {"0-10 dB": {"n": 1, "accuracy": 0.0}, "10-20 dB": {"n": 0, "accuracy": None},
                               "20-30 dB": {"n": 1, "accuracy": 1.0}, "clean": {"n": 3, "accuracy": 2 / 3}}
    assert channels["noise"] == {"babble": {"n": 1, "accuracy": 0.0}, "pink": {"n": 1, "accuracy": 1.0},
                                 "white": {"n": 3, "accuracy": 2 / 3}}
    assert channels["reverb"]["yes"] == {"n": 1, "accuracy": 1.0}
    assert channels["telephone"]["yes"] == {"n": 1, "accuracy": 0.0}
    # clean means no noise, room or line: the two quiet clips only
    assert channels["clean"] == {"n": 2, "accuracy": 1.0}
    assert channels["clean_by_engine"] == {"espeak-ng": {"n": 2, "accuracy": 1.0}}


def test_no_channel_breakdown_without_recorded_channels():
    rows = [_row("yes"), _row("no")]
    dec = Decisions(t_star=np.full(2, 99), spiked=np.zeros(2, bool), predicted=np.array([0, 1]), lengths=np.full(2, 100))
    assert "keyword_accuracy_by_channel" not in summarise(_features(rows), dec, LABELS, FIRING, FRAME_MS)
