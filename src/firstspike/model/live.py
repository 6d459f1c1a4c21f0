"""Keyword clips as a live microphone hears them: the audio goes on after the word.

The clip metrics decide a clip that never crossed θ by its arg-max at the clip's end. A live stream has
no end to fall back on: the server answers when a firing class crosses θ, or when the client sends
`stop`. So this asks what a user who just says the word gets. Each single-word keyword clip is followed
by `tail_s` of its own background (the audio before the word, looped; faint white noise when there is
less than 100 ms of it), and a keyword counts as detected only if a firing class crosses θ before the
tail ends. The network is causal, so the frames of the clip itself are the same as in the clip metrics.

Single-word `_unknown_` clips go through the same way, for the false fires a live stream sees.
`endpointed` is what a session that asks the server to end it once the speech is over gets (the start
message's `endpoint_ms`, which `firstspike listen` and the page send): a spike up to `endpoint_ms` after
the word's measured end, or else the arg-max at that point, which may be a filler ("no command");
`endpointed_by_min_score` also drops late answers whose score is below a floor.
"""

from __future__ import annotations

import numpy as np
import torch

from firstspike.model.features import FeatureSet, features_for_rows
from firstspike.model.inference import decide, sequence_probabilities
from firstspike.model.labels import SILENCE
from firstspike.protocol import DEFAULT_ENDPOINT_MS

MIN_BACKGROUND_S = 0.1  # shortest stretch before the word worth looping
GUARD_S = 0.05  # kept clear of the measured onset, whose energy VAD may start a little late
QUIET_DBFS = -70.0  # the fallback tail: about the level of a quiet room through a decent microphone
ENDPOINT_MS = float(DEFAULT_ENDPOINT_MS)  # what `firstspike listen` and the page ask for (docs/client.md)
MIN_SCORES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9)  # floors a client may set for late answers (at θ only)


def with_background_tail(audio: np.ndarray, onset_ms: float | None, sample_rate: int, tail_s: float,
                         seed: int) -> np.ndarray:
    """`audio` followed by `tail_s` seconds of the clip's own background, looped."""
    tail = int(round(tail_s * sample_rate))
    before = 0 if onset_ms is None else int((onset_ms / 1000.0 - GUARD_S) * sample_rate)
    if before >= MIN_BACKGROUND_S * sample_rate:
        filler = np.resize(audio[:before], tail)
    else:
        filler = np.random.default_rng(seed).standard_normal(tail) * 10 ** (QUIET_DBFS / 20)
    return np.concatenate([audio, filler.astype(np.float32)])


def _answers(data: FeatureSet, probs: list[np.ndarray], firing_mask: np.ndarray, theta: float, frame_ms: float,
             endpoint_ms: float):
    """Decisions of a live stream (spikes only) and of one ended `endpoint_ms` after the word, with the
    score of each answer."""
    live = decide(probs, firing_mask, theta)
    offsets = np.array([r.offset_ms for r in data.rows], dtype=float)
    ends = np.minimum(np.ceil((offsets + endpoint_ms) / frame_ms).astype(int), live.lengths) - 1
    ended = decide([p[: end + 1] for p, end in zip(probs, ends)], firing_mask, theta)
    score = np.array([p[t, k] for p, t, k in zip(probs, ended.t_star, ended.predicted)])
    return live, ended, score, offsets


def endpointed_rates(data: FeatureSet, probs: list[np.ndarray], keyword: np.ndarray, firing_mask: np.ndarray,
                     theta: float, frame_ms: float, endpoint_ms: float, min_score: float) -> dict:
    """What streams that end `endpoint_ms` after the word get, counting late answers from `min_score` up."""
    _, ended, score, _ = _answers(data, probs, firing_mask, theta, frame_ms, endpoint_ms)
    return _endpointed(data, keyword, firing_mask, ended, score, min_score)


def _endpointed(data: FeatureSet, keyword: np.ndarray, firing_mask: np.ndarray, ended, score: np.ndarray,
                min_score: float = 0.0) -> dict:
    """A late answer counts only when its score reaches `min_score` (a client-side choice); spikes always do."""
    command = firing_mask[ended.predicted] & (ended.spiked | (score >= min_score))
    right = command & (ended.predicted == data.targets)
    return {"right": float(right[keyword].mean()), "wrong": float((command & ~right)[keyword].mean()),
            "no_command": float((~command)[keyword].mean()),
            "unknown_commands": float(command[~keyword].mean()) if (~keyword).any() else None}


def _metrics(data: FeatureSet, probs: list[np.ndarray], keyword: np.ndarray, firing_mask: np.ndarray, theta: float,
             frame_ms: float, endpoint_ms: float, min_scores=()) -> dict:
    live, ended, score, offsets = _answers(data, probs, firing_mask, theta, frame_ms, endpoint_ms)
    right = keyword & live.spiked & (live.predicted == data.targets)
    wrong = keyword & live.spiked & ~right
    spiked = keyword & live.spiked
    after_end = ((live.t_star + 1) * frame_ms - offsets)[spiked]
    out = {"theta": theta, "right": float(right[keyword].mean()), "wrong": float(wrong[keyword].mean()),
           "no_decision": float((~live.spiked)[keyword].mean()),
           "unknown_false_fires": float(live.spiked[~keyword].mean()) if (~keyword).any() else None,
           "decision_minus_offset_ms_median": float(np.median(after_end)) if after_end.size else None,
           "decision_minus_offset_ms_p90": float(np.percentile(after_end, 90)) if after_end.size else None,
           "endpointed": _endpointed(data, keyword, firing_mask, ended, score)}
    if min_scores:
        out["endpointed_by_min_score"] = [{"min_score": m, **_endpointed(data, keyword, firing_mask, ended, score, m)}
                                          for m in min_scores]
    return out


def live_tail_probabilities(model, rows, labels: list[str], firing: list[str], tail_s: float, load_wav,
                            batch_size: int = 64, device: str = "cpu", show_progress: bool = True):
    """The single-word keyword and `_unknown_` clips among `rows`, each followed by `tail_s` of its own
    background, run through the model: (features, per-frame probabilities, keyword mask over those clips,
    firing mask over the labels), or None when there is no keyword clip."""
    clips = [r for r in rows if r.kind == "clip" and r.label != SILENCE and r.offset_ms is not None]
    keyword = np.array([r.label in firing for r in clips])
    if not keyword.any():
        return None
    rate = model.frontend.sample_rate

    def load(index: int, row) -> np.ndarray:
        return with_background_tail(np.asarray(load_wav(row.path), dtype=np.float32), row.onset_ms, rate, tail_s,
                                    seed=index)

    data = features_for_rows(clips, labels, set(firing), model.frontend, load, "live tails", show_progress)
    with torch.no_grad():
        probs = sequence_probabilities(model, data, batch_size, device)
    return data, probs, keyword, np.array([label in firing for label in labels])


def live_keyword_report(model, rows, labels: list[str], firing: list[str], theta: float, thetas, tail_s: float,
                        load_wav, batch_size: int = 64, device: str = "cpu", show_progress: bool = True,
                        endpoint_ms: float = ENDPOINT_MS) -> dict | None:
    """Right / wrong / no answer over the single-word keyword clips among `rows`, and false fires over the
    single-word `_unknown_` clips, each followed by a tail; `endpointed`: the same when the stream ends
    `endpoint_ms` after the word's end."""
    tails = live_tail_probabilities(model, rows, labels, firing, tail_s, load_wav, batch_size, device, show_progress)
    if tails is None:
        return None
    data, probs, keyword, mask = tails
    frame_ms = model.config.hop_ms
    return {"tail_s": tail_s, "n": int(keyword.sum()), "n_unknown": int((~keyword).sum()), "endpoint_ms": endpoint_ms,
            **_metrics(data, probs, keyword, mask, theta, frame_ms, endpoint_ms, MIN_SCORES),
            "theta_sweep": [_metrics(data, probs, keyword, mask, th, frame_ms, endpoint_ms)
                            for th in sorted(set(thetas) | {theta})]}
