"""`firstspike stream` against a real server: reports, summaries, exit codes, Ctrl-C."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import psutil

from firstspike.cli import main


def _stream(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["stream", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_file_in_real_time_reports_consistent_timings(server, audio, capsys):
    wav = audio / "corpus" / "yes" / "yes_0.wav"
    code, out, _ = _stream(capsys, str(wav), *server.args(), "--json")
    assert code == 0
    report = json.loads(out)
    decision = report["decision"]
    assert report["outcome"] == "ok" and report["close_code"] == 1000
    assert report["sample_rate"] == 22050 and report["paced"] is True
    assert decision["label"] in {"yes", "no", "_silence_", "_unknown_"} or isinstance(decision["label"], str)
    assert report["audio_ms_to_decision"] == decision["audio_ms"]
    assert math.isclose(report["share_of_file"], decision["audio_ms"] / report["duration_ms"], rel_tol=1e-3)
    assert report["processing_ms"] == decision["processing_ms"] >= 0
    assert 0 < report["ping_rtt_ms"] < 1000
    assert 0 <= report["decision_latency_ms"] <= report["wall_ms_from_first_byte"]
    # Real-time pacing: the chunks before the deciding one (or all, for a stop decision) took real time.
    paced_ms = report["chunk_ms"] * ((report["decision_chunk"] if decision["early"] else report["chunks_sent"] - 1))
    assert report["wall_ms_from_first_byte"] >= 0.95 * paced_ms
    if not decision["early"]:
        assert report["latency_from"] == "stop message"


def test_early_decision_latency_is_taken_from_the_chunk_holding_the_deciding_frame(server, audio, capsys):
    # A tiny threshold makes some firing class cross it within the first frames, whatever the model.
    wav = audio / "corpus" / "no" / "no_0.wav"
    code, out, _ = _stream(capsys, str(wav), *server.args(), "--json", "--fast", "--threshold", "0.001", "--chunk-ms", "40")
    assert code == 0
    report = json.loads(out)
    assert report["decision"]["early"] is True
    frames_needed = report["decision"]["audio_ms"] * 22050 / 1000
    chunk_frames = round(22050 * 40 / 1000)
    assert report["decision_chunk"] == math.ceil(frames_needed / chunk_frames - 1e-9) - 1
    assert report["latency_from"] == "deciding chunk"


def test_folder_summary_counts_accuracy_and_filler_clips(server, audio, capsys, tmp_path):
    details = tmp_path / "details.jsonl"
    code, out, err = _stream(capsys, str(audio / "corpus"), *server.args(), "--json", "--fast", "--concurrency", "3",
                             "--details", str(details))
    assert code == 0, err
    result = json.loads(out)
    summary = result["summary"]
    labels = result["labels"]
    assert summary["files"] == summary["streamed"] == summary["completed"] == 4
    assert summary["labelled"] == 4 and not summary["interrupted"]
    # "house" is no sc12 command, so it is filler (_unknown_) just like the silence clip.
    expected_filler = sum(1 for w in ("house", "_silence_", "yes", "no") if w not in labels or w == "_silence_")
    assert summary["filler_clips"] == expected_filler
    assert summary["keyword_clips"] + summary["filler_clips"] == 4
    assert 0.0 <= summary["accuracy"] <= 1.0
    assert 0 <= summary["false_fires"] <= summary["filler_clips"]
    assert sum(row["n"] for row in summary["per_label"].values()) == 4
    rows = [json.loads(line) for line in details.read_text().splitlines()]
    assert len(rows) == 4 and all(r["close_code"] == 1000 for r in rows)


def test_table_output_and_exit_codes(server, audio, capsys, tmp_path):
    wav = str(audio / "corpus" / "yes" / "yes_0.wav")
    code, out, _ = _stream(capsys, wav, *server.args(), "--fast")
    assert code == 0 and "decision latency" in out and "ping round trip" in out
    code, _, err = _stream(capsys, wav, *server.args(), "--fast", "--expect", "not-a-label")
    assert code == 1 and "expected 'not-a-label'" in err
    code, _, err = _stream(capsys, wav, "--url", server.url, "--token", "wrong", "--fast")
    assert code == 4 and ("401" in err or "1008" in err)
    code, _, err = _stream(capsys, wav, "--url", "ws://127.0.0.1:9/v1/stream", "--fast")
    assert code == 3 and "refused" in err
    code, _, err = _stream(capsys, str(tmp_path / "missing.wav"), *server.args())
    assert code == 2 and "no such file" in err
    code, _, err = _stream(capsys, wav, "--url", "http://127.0.0.1/v1/stream")
    assert code == 2 and "--url must look like" in err
    code, _, err = _stream(capsys, str(audio / "corpus"), *server.args(), "--fast", "--min-accuracy", "1.01")
    assert code == 1 and "below --min-accuracy" in err


def test_ctrl_c_prints_a_partial_summary_without_a_traceback(server, audio):
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "firstspike.cli", "stream", str(audio / "corpus"), *server.args(), "--concurrency", "1",
         "--threshold", "1.0"],  # nothing fires early: every clip streams to its end in real time
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    # Interrupt once a stream is under way: a fixed sleep once landed during the imports on a busy machine.
    streaming = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            c.raddr and c.raddr.port == server.port and c.status == psutil.CONN_ESTABLISHED
            for c in streaming.net_connections(kind="tcp")):
        time.sleep(0.05)
    time.sleep(0.5)  # part of a clip in real time
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: partial" in out


def test_bundled_sample_is_heard_early_and_reported_before_the_file_ends(server, capsys):
    """The README's demo: samples/yes.wav (a held-out voice) through the bundled model."""
    from pathlib import Path

    wav = Path(__file__).resolve().parents[2] / "samples" / "yes.wav"
    code, out, _ = _stream(capsys, str(wav), *server.args(), "--json", "--fast")
    assert code == 0
    report = json.loads(out)
    assert report["decision"]["label"] == "yes" and report["decision"]["early"] is True
    assert report["share_of_file"] < 1.0
