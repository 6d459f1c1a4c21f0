"""Server configuration: one pydantic-settings object, read from `FIRSTSPIKE_*` env vars.

The `firstspike serve` flags mirror these fields one to one (`--max-sessions` ↔ `FIRSTSPIKE_MAX_SESSIONS`),
so a container can be configured either way. Lists (models, API keys, origins) are comma-separated in
the environment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIRSTSPIKE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # `NAME=PATH` or `PATH`; empty means the bundled default model.
    models: CommaList = Field(default_factory=list)
    # Overrides every model's own threshold when set; clients may still override per stream.
    threshold: float | None = Field(None, gt=0.0, le=1.0)

    # Limits
    max_sessions: int = Field(2000, ge=1)
    # The busiest model scheduler's share of time in ticks that the server admits streams up to; above
    # the number of streams it estimates would keep it there, new ones get HTTP 503 (server/admission.py).
    # 1 never refuses on load.
    max_load: float = Field(0.95, gt=0.0, le=1.0)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    max_stream_seconds: float = Field(60.0, gt=0)
    idle_timeout_s: float = Field(10.0, gt=0)
    start_timeout_s: float = Field(5.0, gt=0)
    send_timeout_s: float = Field(5.0, gt=0)
    max_classify_bytes: int = Field(16 << 20, ge=1024)
    grace_period_s: float = Field(10.0, ge=0)

    # Auth: empty `api_keys` means no authentication; empty `allowed_origins` means any origin.
    api_keys: CommaList = Field(default_factory=list)
    allowed_origins: CommaList = Field(default_factory=list)

    # Batching
    max_batch: int = Field(1024, ge=1)
    # Ticks start at most this often: a chunk waits at most this long for its batch (see engine.py).
    max_wait_ms: float = Field(10.0, ge=0)
    # Audio a stream may have queued ahead of the model before the server stops reading from it.
    buffer_seconds: float = Field(0.5, gt=0)
    intra_op_threads: int = Field(1, ge=1)
    # Where the batched model calls run: a thread of the server process, or a model process of their
    # own per model, where they do not take turns with the event loop for the GIL (server/model_process.py).
    step_in: Literal["thread", "process"] = "thread"
    # Server processes sharing the port (SO_REUSEPORT); max_sessions is split evenly among them.
    workers: int = Field(1, ge=1)

    log_format: Literal["json", "kv"] = "kv"
    log_level: str = "info"

    @field_validator("models", "api_keys", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
