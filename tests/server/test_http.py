"""HTTP endpoints: /v1/classify, /v1/models, /healthz, /readyz, /metrics."""

from __future__ import annotations

import io
import json

import numpy as np
import soundfile as sf

from firstspike import protocol
from server_harness import running_server


def _encode(samples: np.ndarray, rate: int, fmt: str, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def test_classify_wav_and_flac_agree(server, yes16k):
    status, body = server.post("/v1/classify", _encode(yes16k, 16000, "WAV"))
    assert status == 200
    wav = json.loads(body)
    assert wav["type"] == "decision" and wav["label"] in next(iter(server.ctx.models.values())).info.labels
    assert wav["frame"] * 10 == wav["audio_ms"] and "trace" not in wav
    status, body = server.post("/v1/classify", _encode(yes16k, 16000, "FLAC"))
    flac = json.loads(body)
    assert status == 200 and (flac["label"], flac["frame"]) == (wav["label"], wav["frame"])
    assert abs(flac["score"] - wav["score"]) < 1e-3  # libsndfile scales FLAC and WAV integers a hair apart


def test_classify_trace_lists_every_frame_up_to_the_decision(server, yes16k):
    status, body = server.post("/v1/classify?trace=true&threshold=1.0", _encode(yes16k, 16000, "WAV"))
    result = json.loads(body)
    assert status == 200 and result["early"] is False
    trace = result["trace"]
    assert [t["frame"] for t in trace] == list(range(1, result["frame"] + 1))
    assert all(len(t["scores"]) == 3 and 0 <= t["firing_score"] <= 1 for t in trace)
    top = trace[-1]["scores"]
    assert max(top, key=top.get) == result["label"]


def test_classify_stereo_44k_file(server, yes16k):
    import soxr

    stereo = np.stack([soxr.resample(yes16k, 16000, 44100)] * 2, axis=1)
    status, body = server.post("/v1/classify", _encode(stereo, 44100, "WAV"))
    assert status == 200 and json.loads(body)["type"] == "decision"


def test_classify_bad_bodies(server, yes16k):
    status, body = server.post("/v1/classify", b"this is not audio")
    assert status == 415 and json.loads(body)["code"] == protocol.ERR_INVALID_AUDIO
    status, body = server.post("/v1/classify", _encode(np.zeros(0, np.float32), 16000, "WAV"))
    assert status == 422 and json.loads(body)["code"] == protocol.ERR_NO_AUDIO
    nan = yes16k.copy()
    nan[100] = np.nan
    status, body = server.post("/v1/classify", _encode(nan, 16000, "WAV", "FLOAT"))
    assert status == 415 and "NaN" in json.loads(body)["message"]
    status, body = server.post("/v1/classify?model=nope", _encode(yes16k, 16000, "WAV"))
    assert status == 400 and json.loads(body)["code"] == protocol.ERR_UNKNOWN_MODEL
    status, _ = server.post("/v1/classify?threshold=2", _encode(yes16k, 16000, "WAV"))
    assert status == 422


def test_classify_body_over_the_limit_is_413():
    with running_server(max_classify_bytes=4096) as small:
        status, body = small.post("/v1/classify", b"\0" * 6000)
        assert status == 413 and json.loads(body)["code"] == protocol.ERR_TOO_BIG


def test_models_health_ready_metrics(server):
    status, body = server.get("/v1/models")
    models = json.loads(body)["models"]
    assert status == 200 and models[0]["default"] is True
    assert {"name", "model", "labels", "firing_labels", "threshold", "sample_rate", "frame_ms", "graph"} <= set(models[0])
    assert server.get("/healthz") == (200, b'{"status":"ok"}')
    status, body = server.get("/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
    status, body = server.get("/metrics")
    text = body.decode()
    for name in ("firstspike_sessions_active", "firstspike_sessions_total", "firstspike_frames_total",
                 "firstspike_audio_seconds_total", "firstspike_batch_size_bucket", "firstspike_step_seconds_bucket",
                 "firstspike_tick_seconds_bucket", "firstspike_decision_processing_seconds_bucket"):
        assert name in text, name


def test_static_page_is_served_if_present(server):
    from firstspike.server.app import static_dir

    status, body = server.get("/")
    if (static_dir() / "index.html").is_file():
        assert status == 200 and b"<html" in body.lower()
    else:
        assert status == 404
