"""`SentChunks`: a session's chunk records as columns of numbers, read back as `SentChunk` rows."""

from __future__ import annotations

import gc

from firstspike.client.connection import SentChunk, SentChunks, SessionResult


def test_rows_read_back_as_written():
    chunks = SentChunks()
    assert len(chunks) == 0 and chunks.max_lag_ms == 0.0 and list(chunks) == []
    chunks.append(0, 1600, 10.5, 0.0)
    chunks.append(1600, 3200, 10.6, 12.25)
    assert len(chunks) == 2
    assert chunks[0] == SentChunk(0, 1600, 10.5, 0.0)
    assert chunks[-1].end_frame == 3200 and chunks[-1].lag_ms == 12.25
    assert list(chunks) == [chunks[0], chunks[1]]
    assert chunks.max_lag_ms == 12.25


def test_a_session_result_derives_its_figures_from_them():
    res = SessionResult(sample_rate=16000, channels=1)
    for k in range(3):
        res.chunks.append(1600 * k, 1600 * (k + 1), 1.0 + 0.1 * k, 5.0 * k)
    res.ready = {"frame_ms": 10}
    res.decision = {"type": "decision", "label": "yes", "early": True, "audio_ms": 150}
    res.decision_at = 1.25
    assert res.frames_sent == 4800 and res.max_lag_ms == 10.0
    assert res.decision_chunk == 1  # frame 150 ms = sample 2400 ends inside chunk 1
    assert abs(res.decision_latency_ms - 150.0) < 1e-9


def test_the_records_add_nothing_for_the_garbage_collector_to_walk():
    chunks = SentChunks()
    for k in range(1000):
        chunks.append(k, k + 1, float(k), 0.0)
    columns = [ref for ref in gc.get_referents(chunks) if not isinstance(ref, type)]
    assert len(columns) == 4  # its four arrays (and its class), however many chunks it holds
    assert all(isinstance(ref, type) for column in columns for ref in gc.get_referents(column))  # numbers, not objects
