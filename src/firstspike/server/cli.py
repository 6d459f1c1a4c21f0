"""`firstspike serve`: run the streaming server. Every flag mirrors a `FIRSTSPIKE_*` env var."""

from __future__ import annotations

import argparse
import logging
import sys

# (flag, settings field, type, help); list-valued fields may be repeated.
_FLAGS: list[tuple[str, str, type, str]] = [
    ("--host", "host", str, "interface to bind (FIRSTSPIKE_HOST, default 127.0.0.1)"),
    ("--port", "port", int, "TCP port (FIRSTSPIKE_PORT, default 8000)"),
    ("--threshold", "threshold", float, "θ for every model, overriding each model's own (FIRSTSPIKE_THRESHOLD)"),
    ("--max-sessions", "max_sessions", int, "concurrent streams before new ones get 1013 (default 2000)"),
    ("--max-message-bytes", "max_message_bytes", int, "largest websocket message (default 1 MiB; bigger: 1009)"),
    ("--max-stream-seconds", "max_stream_seconds", float, "longest stream in audio seconds (default 60; longer: 4008)"),
    ("--idle-timeout", "idle_timeout_s", float, "seconds without a client message before 4008 (default 10)"),
    ("--start-timeout", "start_timeout_s", float, "seconds to wait for the start message (default 5)"),
    ("--send-timeout", "send_timeout_s", float, "seconds a send to a stalled client may block (default 5)"),
    ("--max-classify-bytes", "max_classify_bytes", int, "largest POST /v1/classify body (default 16 MiB)"),
    ("--grace-period", "grace_period_s", float, "seconds open streams get to finish after SIGTERM (default 10)"),
    ("--max-batch", "max_batch", int, "most streams stepped in one model call (default 1024)"),
    ("--max-wait-ms", "max_wait_ms", float, "shortest interval between batched model ticks, so streams share calls (default 10; a lone stream never waits)"),
    ("--buffer-seconds", "buffer_seconds", float, "audio a stream may queue before the server stops reading it"),
    ("--intra-op-threads", "intra_op_threads", int, "onnxruntime threads per model call (default 1)"),
    ("--workers", "workers", int, "server processes on the port, e.g. one per core (default 1; Linux SO_REUSEPORT)"),
    ("--log-level", "log_level", str, "debug, info, warning or error (default info)"),
]
_LIST_FLAGS: list[tuple[str, str, str]] = [
    ("--model", "models", "NAME=PATH or PATH of a step model, or `bundled-int8` for the bundled model with int8 LSTM gates; repeat for several (default: `bundled`, float32)"),
    ("--api-key", "api_keys", "accepted API key (Bearer header or ?token=); repeat for several; none: no auth"),
    ("--allowed-origin", "allowed_origins", "Origin allowed to open streams; repeat; none: any origin"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, field, kind, help_text in _FLAGS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=help_text)
    for flag, field, help_text in _LIST_FLAGS:
        parser.add_argument(flag, dest=field, action="append", default=None, help=help_text)
    parser.add_argument("--log-format", dest="log_format", choices=("json", "kv"), default=None,
                        help="session log lines as JSON or key=value (FIRSTSPIKE_LOG_FORMAT, default kv)")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from firstspike.gc_tuning import calm_the_garbage_collector
    from firstspike.server.app import create_app
    from firstspike.server.logs import configure_logging
    from firstspike.server.models import ModelSpecError
    from firstspike.server.serving import DrainingServer, uvicorn_config
    from firstspike.server.settings import ServerSettings

    fields = [f for _, f, _, _ in _FLAGS] + [f for _, f, _ in _LIST_FLAGS] + ["log_format"]
    overrides = {field: getattr(args, field) for field in fields if getattr(args, field, None) is not None}
    try:
        settings = ServerSettings(**overrides)
    except ValidationError as err:
        print(f"firstspike serve: bad configuration:\n{err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    if settings.workers > 1:
        return _run_workers(settings)
    try:
        app = create_app(settings)
    except ModelSpecError as err:
        print(f"firstspike serve: {err}", file=sys.stderr)
        return 2
    models = ", ".join(model.full_name for model in app.state.ctx.models.values())
    logging.getLogger("firstspike.server").info(
        "serving %s on http://%s:%d (websocket %s, max %d sessions)",
        models, settings.host, settings.port, "/v1/stream", settings.max_sessions,
    )
    server = DrainingServer(uvicorn_config(app, settings), app.state.ctx)
    calm_the_garbage_collector()
    server.run()
    return 0


def _run_workers(settings) -> int:
    from firstspike.server.models import ModelSpecError, load_models
    from firstspike.server.workers import Supervisor, WorkersError

    try:  # a bad --model must fail here, once, not in every worker
        models = load_models(settings.models, settings.threshold, settings.intra_op_threads)
    except ModelSpecError as err:
        print(f"firstspike serve: {err}", file=sys.stderr)
        return 2
    logging.getLogger("firstspike.server").info(
        "serving %s on http://%s:%d (websocket %s, max %d sessions over %d workers)",
        ", ".join(model.full_name for model in models.values()), settings.host, settings.port, "/v1/stream",
        settings.max_sessions, settings.workers,
    )
    del models
    try:
        return Supervisor(settings).run()
    except WorkersError as err:
        print(f"firstspike serve: {err}", file=sys.stderr)
        return 2
