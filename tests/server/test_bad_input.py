"""Every bad-input path ends with an `error` message and the close code the protocol assigns."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from firstspike import protocol
from server_harness import converse, pcm_s16, start_message

STOP = json.dumps({"type": "stop"})
AUDIO = pcm_s16(np.sin(np.arange(3200) / 7.0) * 0.3)


def talk(server, sends, **kwargs):
    return asyncio.run(converse(server.ws_url, sends, **kwargs))


def assert_error(result, code: str):
    assert result.error is not None, result.messages
    assert result.error["code"] == code, result.error
    assert isinstance(result.error["message"], str) and result.error["message"]
    assert result.close_code == protocol.ERROR_CLOSE_CODES[code]
    assert result.decision is None


@pytest.mark.parametrize(
    "first, code",
    [
        ("not json at all", protocol.ERR_BAD_START),
        ("[1, 2, 3]", protocol.ERR_BAD_START),
        (json.dumps({"type": "hello"}), protocol.ERR_BAD_START),
        (json.dumps({"type": "start", "encoding": "pcm_s16le"}), protocol.ERR_BAD_START),
        (json.dumps({"type": "start", "sample_rate": "16000", "encoding": "pcm_s16le"}), protocol.ERR_BAD_START),
        (json.dumps({"type": "start", "sample_rate": 16000, "encoding": 3}), protocol.ERR_BAD_START),
        (start_message(rate=11025), protocol.ERR_UNSUPPORTED_FORMAT),
        (start_message(encoding="mp3"), protocol.ERR_UNSUPPORTED_FORMAT),
        (start_message(channels=3), protocol.ERR_UNSUPPORTED_FORMAT),
        (start_message(model="no-such-model"), protocol.ERR_UNKNOWN_MODEL),
        (start_message(threshold=0), protocol.ERR_BAD_START),
        (start_message(threshold=1.5), protocol.ERR_BAD_START),
        (start_message(threshold="high"), protocol.ERR_BAD_START),
        (start_message(partials="yes"), protocol.ERR_BAD_START),
        (STOP, protocol.ERR_PROTOCOL),
        (AUDIO, protocol.ERR_PROTOCOL),
    ],
    ids=["garbage", "array", "wrong-type", "no-rate", "rate-string", "encoding-int", "rate-11025", "mp3",
         "3-channels", "unknown-model", "theta-0", "theta-1.5", "theta-str", "partials-str", "stop-first",
         "audio-first"],
)
def test_bad_first_message(server, first, code):
    assert_error(talk(server, [first]), code)
    assert server.wait_sessions_zero() == 0


@pytest.mark.parametrize(
    "later, code",
    [
        ("{garbage", protocol.ERR_PROTOCOL),
        (json.dumps({"type": "pause"}), protocol.ERR_PROTOCOL),
        (start_message(), protocol.ERR_PROTOCOL),
        ("42", protocol.ERR_PROTOCOL),
    ],
    ids=["garbage", "unknown-type", "second-start", "number"],
)
def test_bad_message_after_start(server, later, code):
    result = talk(server, [start_message(threshold=1.0), AUDIO, later])
    assert result.ready is not None
    assert_error(result, code)


def test_odd_byte_count_is_refused_at_stop(server):
    result = talk(server, [start_message(threshold=1.0), AUDIO + b"\x01", STOP])
    assert_error(result, protocol.ERR_INVALID_AUDIO)
    assert "byte" in result.error["message"]


def test_odd_byte_chunks_that_add_up_are_fine(server):
    result = talk(server, [start_message(threshold=1.0), AUDIO[:1001], AUDIO[1001:], STOP])
    assert result.decision is not None and result.close_code == 1000


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_floats_are_refused(server, bad):
    samples = np.zeros(1600, "<f4")
    samples[700] = bad
    result = talk(server, [start_message(encoding="pcm_f32le"), samples.tobytes()])
    assert_error(result, protocol.ERR_INVALID_AUDIO)


def test_message_just_over_the_limit_gets_an_error_and_1009(server):
    limit = server.ctx.settings.max_message_bytes
    result = talk(server, [start_message(), b"\x00" * (limit + 2)])
    assert_error(result, protocol.ERR_TOO_BIG)


def test_huge_message_is_cut_off_with_1009(server):
    result = talk(server, [start_message(), b"\x00" * (server.ctx.settings.max_message_bytes * 4)])
    assert result.close_code == protocol.CLOSE_TOO_BIG


def test_huge_text_message_before_start_is_1009(server):
    limit = server.ctx.settings.max_message_bytes
    result = talk(server, ["x" * (limit + 10)])
    assert_error(result, protocol.ERR_TOO_BIG)


def test_stop_without_audio_is_protocol_misuse(server):
    assert_error(talk(server, [start_message(), STOP]), protocol.ERR_NO_AUDIO)


def test_stop_twice_is_protocol_misuse_or_already_decided(server):
    result = talk(server, [start_message(threshold=1.0), AUDIO, STOP, STOP])
    # The decision usually wins the race against the second stop; both endings are defined.
    assert result.decision is not None or result.error["code"] == protocol.ERR_PROTOCOL
    assert result.close_code in (protocol.CLOSE_NORMAL, protocol.CLOSE_PROTOCOL)
