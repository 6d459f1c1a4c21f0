"""Reading files at their native rate, chunking, and finding labels (no server needed)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from firstspike.client.audio_files import AudioInputError, discover, load_clip, truth_label
from firstspike.client.server_stats import parse_metrics


def test_wav_keeps_its_native_rate_and_chunks_cover_every_sample(audio):
    clip = load_clip(audio / "corpus" / "yes" / "yes_0.wav")
    assert clip.sample_rate == 22050 and clip.channels == 1
    chunks = clip.chunks(100)
    assert all(len(c) == 2205 * 2 for c in chunks[:-1])
    assert b"".join(chunks) == clip.pcm
    assert clip.start_message() == {"type": "start", "sample_rate": 22050, "encoding": "pcm_s16le", "channels": 1}


def test_flac_stereo_and_many_channel_files(tmp_path):
    t = np.linspace(0, 1, 48000, endpoint=False)
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    sf.write(tmp_path / "s.flac", stereo, 48000, subtype="PCM_16")
    clip = load_clip(tmp_path / "s.flac")
    assert (clip.sample_rate, clip.channels, clip.frames) == (48000, 2, 48000)
    sf.write(tmp_path / "quad.wav", np.tile(stereo, 2), 48000, subtype="PCM_16")
    assert load_clip(tmp_path / "quad.wav").channels == 1  # protocol v1 carries at most stereo


def test_unsupported_rate_and_garbage_are_clear_errors(tmp_path):
    sf.write(tmp_path / "odd.wav", np.zeros(11025, np.float32), 11025)
    with pytest.raises(AudioInputError, match="11025 Hz is not in protocol v1"):
        load_clip(tmp_path / "odd.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioInputError, match="cannot read audio"):
        load_clip(tmp_path / "junk.wav")
    with pytest.raises(AudioInputError, match="no such file"):
        discover(tmp_path / "missing")


def test_labels_from_folders_labels_csv_and_manifest_split(audio, tmp_path):
    found = {p.path.name: p.label for p in discover(audio / "corpus")}
    assert found == {"yes_0.wav": "yes", "no_0.wav": "no", "house_0.wav": "house", "silence_0.wav": "_silence_"}
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,split\n"
        f"{audio / 'corpus/yes/yes_0.wav'},yes,test\n"
        f"{audio / 'corpus/no/no_0.wav'},no,train\n"
    )
    assert [p.label for p in discover(manifest)] == ["yes", "no"]
    assert [p.label for p in discover(manifest, split="test")] == ["yes"]
    (tmp_path / "labels.csv").write_text(f"path,label\n{audio / 'corpus/no/no_0.wav'},_unknown_\n")
    assert [p.label for p in discover(tmp_path)] == ["_unknown_"]


def test_words_outside_the_model_count_as_unknown():
    labels = ["yes", "no", "_silence_", "_unknown_"]
    assert truth_label("yes", labels) == "yes"
    assert truth_label("house", labels) == "_unknown_"
    assert truth_label("_silence_", labels) == "_silence_"
    assert truth_label(None, labels) is None


def test_prometheus_text_is_summed_per_metric():
    text = (
        "# HELP process_cpu_seconds_total x\n"
        "process_cpu_seconds_total 12.5\n"
        'firstspike_sessions_active{model="a b"} 3.0\n'
        'firstspike_sessions_active{model="c"} 4.0\n'
    )
    values = parse_metrics(text)
    assert values["process_cpu_seconds_total"] == 12.5
    assert values["firstspike_sessions_active"] == 7.0
