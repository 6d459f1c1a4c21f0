"""Classify one whole clip (an uploaded WAV/FLAC) with the same threshold rule as a live stream.

A clip needs no batching across clients: it runs call after call at batch 1 in a worker thread and
stops at the first crossing, exactly like a stream that sent all its audio at once. A model whose
graph takes any number of hops per call (`variable_hops`) gets the clip a second at a time, one
graph call per second instead of a hundred, with the same per-hop probabilities.
"""

from __future__ import annotations

import io
import time

import numpy as np
import soundfile

from firstspike import protocol
from firstspike.server.audio_input import AudioError, Resampler
from firstspike.server.models import LoadedModel
from firstspike.server.session import audio_ms, firing_crossing, score_value

CLIP_BLOCK_CALLS = 100  # calls' worth of audio per graph call for a variable_hops model (1 s of 10 ms hops)
TRACE_TOP = 3  # labels per traced frame; each frame also carries the best firing score (what θ is tested on)


def decode_clip(body: bytes) -> tuple[np.ndarray, int]:
    """WAV/FLAC bytes → (float32 samples [n, channels], sample rate)."""
    try:
        samples, rate = soundfile.read(io.BytesIO(body), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as err:
        raise AudioError(protocol.ERR_INVALID_AUDIO, f"cannot decode the body as WAV or FLAC: {err}") from None
    if not 8000 <= rate <= 192000:
        raise AudioError(protocol.ERR_UNSUPPORTED_FORMAT, f"sample rate {rate} Hz is outside 8000–192000 Hz")
    return samples, rate


def to_model_rate(samples: np.ndarray, rate: int, model_rate: int) -> np.ndarray:
    """Downmix, refuse NaN/inf, clip to [-1, 1], resample with the streaming path's resampler."""
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0].copy()
    if not np.isfinite(mono).all():
        raise AudioError(protocol.ERR_INVALID_AUDIO, "audio contains NaN or infinite samples")
    np.clip(mono, -1.0, 1.0, out=mono)
    return Resampler(rate, model_rate).push(mono, last=True)


def _probs_of_each_call(model: LoadedModel, steps: np.ndarray):
    """(call index, probs [1, K]) for each row of steps [calls, samples_per_call], in order, from a zero state.

    Lazily: the caller stops at the first crossing, and so does the model (to within one block)."""
    state = np.zeros((1, model.info.state_size), np.float32)
    if model.info.variable_hops:
        for start in range(0, len(steps), CLIP_BLOCK_CALLS):
            frame_probs, state = model.run_frames(steps[start: start + CLIP_BLOCK_CALLS].reshape(1, -1), state)
            for k in range(frame_probs.shape[1]):
                yield start + k, frame_probs[:, k]
    else:
        for call in range(len(steps)):
            probs, state = model.run(steps[call: call + 1], state)
            yield call, probs


def classify_samples(model: LoadedModel, audio: np.ndarray, threshold: float, trace: bool) -> dict:
    """Step the model over model-rate audio until a firing class crosses θ or the audio ends."""
    started = time.perf_counter()
    info = model.info
    spc = info.samples_per_call
    calls = -(-len(audio) // spc)
    if calls == 0:
        raise AudioError(protocol.ERR_NO_AUDIO, "the clip holds no audio")
    padded = np.zeros(calls * spc, np.float32)
    padded[: len(audio)] = audio
    firing = np.asarray(info.firing_indices, dtype=np.intp)
    theta = np.array([threshold], np.float32)
    frames_trace: list[dict] = []
    decision = None
    probs = None
    for call, probs in _probs_of_each_call(model, padded.reshape(calls, spc)):
        frames = (call + 1) * info.hops_per_call
        if trace:
            row = probs[0]
            top = np.argsort(row)[::-1][:TRACE_TOP]
            frames_trace.append(
                {
                    "frame": frames,
                    "audio_ms": audio_ms(frames, info),
                    "scores": {info.labels[i]: score_value(row[i]) for i in top.tolist()},
                    "firing_score": score_value(row[firing].max()),
                }
            )
        fired, label_index, score = firing_crossing(probs, firing, theta)
        if fired[0]:
            decision = (frames, int(label_index[0]), float(score[0]), True)
            break
    if decision is None:
        best = int(probs[0].argmax())
        decision = (calls * info.hops_per_call, best, float(probs[0][best]), False)
    frames, label_index, score, early = decision
    result = {
        "type": protocol.DECISION,
        "label": info.labels[label_index],
        "score": score_value(score),
        "early": early,
        "audio_ms": audio_ms(frames, info),
        "frame": frames,
        "processing_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "model": model.full_name,
        "threshold": threshold,
        "clip_ms": audio_ms(calls * info.hops_per_call, info),
    }
    if trace:
        result["trace"] = frames_trace
    return result
