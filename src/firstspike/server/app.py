"""`create_app(settings)`: the FastAPI application, with models loaded and engines bound to its lifespan."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from firstspike import __version__, protocol
from firstspike.server.context import ServerContext
from firstspike.server.http_api import router
from firstspike.server.models import load_models
from firstspike.server.settings import ServerSettings
from firstspike.server.stream_endpoint import stream_endpoint


def static_dir() -> Path:
    return Path(str(resources.files("firstspike.server").joinpath("static")))


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Load the models now (a bad --model fails at startup, not at the first stream) and build the app."""
    settings = settings or ServerSettings()
    models = load_models(settings.models, settings.threshold, settings.intra_op_threads)
    ctx = ServerContext(settings, models)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await ctx.start()
        try:
            yield
        finally:
            await ctx.stop()

    app = FastAPI(title="firstspike", version=__version__, lifespan=lifespan)
    app.state.ctx = ctx
    app.include_router(router)
    app.add_api_websocket_route(protocol.STREAM_PATH, stream_endpoint)
    static = static_dir()
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="static")
    return app


def streams_first(app: FastAPI) -> ASGIApp:
    """The ASGI entry point uvicorn serves: `/v1/stream` upgrades go straight to the stream handler.

    Through FastAPI a websocket passes about a dozen middleware and routing layers on its way in,
    and wrappers of them on every message the handler sends or receives. At 1000 concurrent 8 s
    streams a new stream opens every 8 ms, and the layers cost more than the handler's own set-up.
    Everything else (HTTP, lifespan, other paths) goes to `app` unchanged, and `app` keeps the
    route too, for any server that mounts it directly.
    """

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == protocol.STREAM_PATH:
            scope["app"] = app
            await stream_endpoint(WebSocket(scope, receive, send))
        else:
            await app(scope, receive, send)

    return entry
