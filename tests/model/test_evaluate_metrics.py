"""The decision-time metrics of `firstspike evaluate`, on hand-made decisions with known answers."""

from __future__ import annotations

import numpy as np

from firstspike.model.data.corpus import Row
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
