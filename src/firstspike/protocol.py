"""Protocol v1 of `/v1/stream`: message types, formats and close codes shared by server and client.

Standard library only: the client and the browser page speak the same words as the server.
See docs/protocol.md for the conversation itself.
"""

from __future__ import annotations

PROTOCOL_VERSION = 1
STREAM_PATH = "/v1/stream"

SUPPORTED_RATES = (8000, 16000, 22050, 44100, 48000)
SUPPORTED_ENCODINGS = {"pcm_s16le": 2, "pcm_f32le": 4}  # bytes per sample
SUPPORTED_CHANNELS = (1, 2)

# Message types
START, STOP = "start", "stop"
READY, SCORES, DECISION, ERROR = "ready", "scores", "decision", "error"

# Close codes
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_OVERLOADED = 1013
CLOSE_PROTOCOL = 4000
CLOSE_TIMEOUT = 4008

CLOSE_REASONS = {
    CLOSE_NORMAL: "normal",
    CLOSE_GOING_AWAY: "going away",
    CLOSE_UNSUPPORTED: "bad start message or unsupported format",
    CLOSE_POLICY: "unauthorised or policy",
    CLOSE_TOO_BIG: "message too big",
    CLOSE_INTERNAL: "internal error",
    CLOSE_OVERLOADED: "overloaded, try again",
    CLOSE_PROTOCOL: "protocol misuse",
    CLOSE_TIMEOUT: "stream too long or idle",
}

PARTIALS_EVERY_MS = 50
ENDPOINT_MS_RANGE = (10, 10_000)  # the start message's optional "endpoint_ms" (docs/protocol.md)
# What firstspike's own clients (listen, the page) ask for, and the score from which they take an answer at
# the end of speech as a command (docs/client.md: the trade-off)
DEFAULT_ENDPOINT_MS = 300
ENDPOINT_MIN_SCORE = 0.8

# Error codes: the `code` of an `error` message, and the close code that follows it (docs/protocol.md)
ERR_BAD_START = "bad_start"
ERR_UNSUPPORTED_FORMAT = "unsupported_format"
ERR_UNKNOWN_MODEL = "unknown_model"
ERR_INVALID_AUDIO = "invalid_audio"
ERR_UNAUTHORIZED = "unauthorized"
ERR_ORIGIN = "origin_not_allowed"
ERR_TOO_BIG = "message_too_big"
ERR_INTERNAL = "internal_error"
ERR_OVERLOADED = "overloaded"
ERR_PROTOCOL = "protocol_error"
ERR_NO_AUDIO = "no_audio"
ERR_START_TIMEOUT = "start_timeout"
ERR_IDLE_TIMEOUT = "idle_timeout"
ERR_TOO_LONG = "stream_too_long"
ERR_SHUTTING_DOWN = "shutting_down"

ERROR_CLOSE_CODES = {
    ERR_BAD_START: CLOSE_UNSUPPORTED,
    ERR_UNSUPPORTED_FORMAT: CLOSE_UNSUPPORTED,
    ERR_UNKNOWN_MODEL: CLOSE_UNSUPPORTED,
    ERR_INVALID_AUDIO: CLOSE_UNSUPPORTED,
    ERR_UNAUTHORIZED: CLOSE_POLICY,
    ERR_ORIGIN: CLOSE_POLICY,
    ERR_TOO_BIG: CLOSE_TOO_BIG,
    ERR_INTERNAL: CLOSE_INTERNAL,
    ERR_OVERLOADED: CLOSE_OVERLOADED,
    ERR_PROTOCOL: CLOSE_PROTOCOL,
    ERR_NO_AUDIO: CLOSE_PROTOCOL,
    ERR_START_TIMEOUT: CLOSE_TIMEOUT,
    ERR_IDLE_TIMEOUT: CLOSE_TIMEOUT,
    ERR_TOO_LONG: CLOSE_TIMEOUT,
    ERR_SHUTTING_DOWN: CLOSE_GOING_AWAY,
}
