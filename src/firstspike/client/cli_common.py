"""Flags and exit codes every client command shares, so scripts can treat them alike.

Cheap to import: only the standard library and protocol constants.
"""

from __future__ import annotations

import argparse
import os

from firstspike.client.connection import DEFAULT_URL, OK, PROTOCOL, REJECTED, UNAVAILABLE, SessionOptions
from firstspike.protocol import ENDPOINT_MS_RANGE

EXIT_OK = 0
EXIT_FAILED_CHECK = 1  # the run worked but a requested check failed (--expect, --min-accuracy, streams not held)
EXIT_USAGE = 2  # bad arguments or local setup: unreadable file, no PortAudio, no input device
EXIT_UNAVAILABLE = 3  # connection refused, timeout, HTTP 502/503/504
EXIT_SERVER_ERROR = 4  # the server refused or failed: error message, close code other than 1000, HTTP 401/403/404
EXIT_INTERRUPTED = 130  # Ctrl-C (a partial summary is still printed)

EXIT_FOR_OUTCOME = {OK: EXIT_OK, UNAVAILABLE: EXIT_UNAVAILABLE, REJECTED: EXIT_SERVER_ERROR, PROTOCOL: EXIT_SERVER_ERROR}

EXIT_CODES_EPILOG = (
    "exit codes: 0 ok; 1 a requested check failed; 2 usage or local setup; "
    "3 server unavailable (refused, timeout, HTTP 503); 4 server error (error message, close code, HTTP 401); "
    "130 interrupted"
)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("FIRSTSPIKE_URL", DEFAULT_URL),
                        help=f"websocket endpoint (default {DEFAULT_URL}, or $FIRSTSPIKE_URL)")
    parser.add_argument("--token", default=os.environ.get("FIRSTSPIKE_TOKEN"),
                        help="API key, sent as 'Authorization: Bearer TOKEN' (default $FIRSTSPIKE_TOKEN)")
    parser.add_argument("--model", help="model name to ask the server for (default: the server's default)")
    parser.add_argument("--threshold", type=float, help="override the model's threshold θ for these sessions")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait to connect, and for a decision after the audio ends (default 10)")
    parser.epilog = EXIT_CODES_EPILOG


def session_options(args: argparse.Namespace, partials: bool = False, ping: bool = True) -> SessionOptions:
    """Build SessionOptions from the shared flags; ValueError on a malformed URL or threshold."""
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        raise ValueError(f"--threshold must lie in (0, 1], got {args.threshold}")
    if args.timeout <= 0:
        raise ValueError("--timeout must be positive")
    return SessionOptions(
        url=args.url, token=args.token, model=args.model, threshold=args.threshold,
        partials=partials, ping=ping, open_timeout=args.timeout, decision_timeout=args.timeout,
    )


def endpoint_ms(args: argparse.Namespace) -> float | None:
    """`--endpoint-ms` as the start message's `endpoint_ms`: None for 0 (off); ValueError outside the
    range the server accepts."""
    low, high = ENDPOINT_MS_RANGE
    if args.endpoint_ms == 0:
        return None
    if not low <= args.endpoint_ms <= high:
        raise ValueError(f"--endpoint-ms must be 0 (off) or lie in [{low}, {high}], got {args.endpoint_ms:g}")
    return args.endpoint_ms


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value
