"""Structured log lines: one per finished session, as JSON or key=value (`--log-format`)."""

from __future__ import annotations

import json
import logging
import sys

SESSION_LOGGER = "firstspike.server.session"


def format_fields(fields: dict, log_format: str) -> str:
    if log_format == "json":
        return json.dumps(fields, separators=(",", ":"), default=str)
    return " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())


def _kv_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=')) else text


class _MessageOnly(logging.Formatter):
    """Session lines are already structured; other server logs get a timestamp and level."""

    def __init__(self, log_format: str):
        super().__init__()
        self.log_format = log_format

    def format(self, record: logging.LogRecord) -> str:
        if record.name == SESSION_LOGGER:
            return record.getMessage()
        fields = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return format_fields(fields, self.log_format)


def configure_logging(log_format: str, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_MessageOnly(log_format))
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    for name in ("firstspike", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        # uvicorn logs every websocket open/close at info: thousands of lines under load.
        logger.setLevel(numeric if name == "firstspike" or numeric <= logging.DEBUG else max(numeric, logging.WARNING))
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
