"""Running the app under uvicorn: its configuration, and a graceful drain on SIGTERM/SIGINT.

uvicorn's own shutdown closes every websocket at once with 1012. Instead the first signal starts the
drain (`/readyz` turns 503, new streams are refused, open streams get `grace_period_s` to finish,
then a final decision and a 1001 close) and only then lets uvicorn stop. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn
from fastapi import FastAPI

from firstspike.server.app import streams_first
from firstspike.server.context import ServerContext
from firstspike.server.direct_audio import DirectAudioProtocol
from firstspike.server.settings import ServerSettings

log = logging.getLogger("firstspike.server")


def uvicorn_config(app: FastAPI, settings: ServerSettings, **overrides) -> uvicorn.Config:
    options = dict(
        host=settings.host,
        port=settings.port,
        # Frames a little over our own limit still reach the app, which answers with a proper error;
        # anything bigger is cut off by the websocket layer itself (also close code 1009).
        ws_max_size=settings.max_message_bytes + 65536,
        ws_per_message_deflate=False,  # compressing PCM costs CPU and saves little
        ws=DirectAudioProtocol,  # binary audio straight to the stream's session (server/direct_audio.py)
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    options.update(overrides)
    return uvicorn.Config(streams_first(app), **options)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ctx: ServerContext):
        super().__init__(config)
        self.ctx = ctx
        self._drain_task: asyncio.Task | None = None

    def handle_exit(self, sig, frame) -> None:
        if self._drain_task is not None or self.should_exit:
            super().handle_exit(sig, frame)  # second signal: stop now
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().handle_exit(sig, frame)
            return
        self._drain_task = loop.create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.ctx.drain(self.ctx.settings.grace_period_s)
        finally:
            log.info("drained; stopping")
            self.should_exit = True
