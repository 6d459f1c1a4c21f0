"""`firstspike serve`: run the streaming server. Every flag mirrors a `FIRSTSPIKE_*` env var."""

from __future__ import annotations

import argparse
import logging
import sys
import typing

from firstspike.server.settings import ServerSettings

# (flag, settings field, type, help); the env var and the default are added from ServerSettings, so
# the help can never disagree with what the server does.
_FLAGS: list[tuple[str, str, type, str]] = [
    ("--host", "host", str, "interface to bind"),
    ("--port", "port", int, "TCP port"),
    ("--threshold", "threshold", float, "θ for every model, overriding each model's own"),
    ("--max-sessions", "max_sessions", int, "concurrent streams before new ones get 1013"),
    ("--max-load", "max_load", float, "share of the time a model's scheduler may be kept busy before new streams get HTTP 503 (1: never)"),
    ("--max-message-bytes", "max_message_bytes", int, "largest websocket message (bigger: 1009)"),
    ("--max-stream-seconds", "max_stream_seconds", float, "longest stream in audio seconds (longer: 4008)"),
    ("--idle-timeout", "idle_timeout_s", float, "seconds without a client message before 4008"),
    ("--start-timeout", "start_timeout_s", float, "seconds to wait for the start message"),
    ("--send-timeout", "send_timeout_s", float, "seconds a send to a stalled client may block"),
    ("--max-classify-bytes", "max_classify_bytes", int, "largest POST /v1/classify body"),
    ("--grace-period", "grace_period_s", float, "seconds open streams get to finish after SIGTERM"),
    ("--max-batch", "max_batch", int, "most streams stepped in one model call"),
    ("--max-wait-ms", "max_wait_ms", float, "shortest interval between batched model ticks, so streams share calls (a lone stream never waits)"),
    ("--buffer-seconds", "buffer_seconds", float, "audio a stream may queue before the server stops reading it"),
    ("--intra-op-threads", "intra_op_threads", int, "onnxruntime threads per model call"),
    ("--workers", "workers", int, "server processes on the port, e.g. one per core (Linux SO_REUSEPORT)"),
    ("--log-level", "log_level", str, "debug, info, warning or error"),
]
_LIST_FLAGS: list[tuple[str, str, str]] = [
    ("--model", "models", "NAME=PATH or PATH of a step model, or `bundled-int8` for the bundled model with int8 LSTM gates; repeat for several"),
    ("--api-key", "api_keys", "accepted API key (Bearer header or ?token=); repeat for several"),
    ("--allowed-origin", "allowed_origins", "Origin allowed to open streams; repeat for several"),
]


# Defaults that read better in words than as the field's value.
_DEFAULT_WORDS = {
    "threshold": "each model's own",
    "models": "bundled (float32)",
    "api_keys": "none: no auth",
    "allowed_origins": "none: any origin",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, field, kind, help_text in _FLAGS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=_help(help_text, field))
    for flag, field, help_text in _LIST_FLAGS:
        parser.add_argument(flag, dest=field, action="append", default=None,
                            help=_help(help_text, field, env_note="comma-separated"))
    parser.add_argument("--step-in", dest="step_in", default=None,
                        choices=typing.get_args(ServerSettings.model_fields["step_in"].annotation),
                        help=_help("where batched model calls run: in a thread of the server process, or in a "
                                   "model process per model, out of the event loop's GIL", "step_in"))
    parser.add_argument("--log-format", dest="log_format", default=None,
                        choices=typing.get_args(ServerSettings.model_fields["log_format"].annotation),
                        help=_help("session log lines as JSON or key=value", "log_format"))


def _help(text: str, field: str, env_note: str = "") -> str:
    """`text [FIRSTSPIKE_FIELD; default …]`, the env var and default read from ServerSettings itself."""
    env = ServerSettings.model_config["env_prefix"] + field.upper() + (f" {env_note}" if env_note else "")
    default = _DEFAULT_WORDS.get(field) or _show_default(ServerSettings.model_fields[field].default)
    return f"{text} [{env}; default {default}]"


def _show_default(value: object) -> str:
    """Byte limits read better in MiB; whole floats without their `.0`."""
    if isinstance(value, int) and value >= 1 << 20 and value % (1 << 20) == 0:
        return f"{value >> 20} MiB"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from firstspike.gc_tuning import calm_the_garbage_collector
    from firstspike.server.app import create_app
    from firstspike.server.logs import configure_logging
    from firstspike.server.models import ModelSpecError
    from firstspike.server.serving import DrainingServer, uvicorn_config

    # Every setting has a flag of the same dest (tests/server/test_shutdown_and_cli.py checks it).
    overrides = {field: getattr(args, field) for field in ServerSettings.model_fields
                 if getattr(args, field, None) is not None}
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
