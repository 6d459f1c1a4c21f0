"""Plain HTTP endpoints: one-shot clip classification, the model list, health and readiness, metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from firstspike import protocol
from firstspike.server.audio_input import AudioError
from firstspike.server.classify import classify_samples, decode_clip, to_model_rate
from firstspike.server.context import ServerContext
from firstspike.server.metrics import CONTENT_TYPE_LATEST
from firstspike.server.models import resolve_model

router = APIRouter()

_AUDIO_ERROR_STATUS = {
    protocol.ERR_INVALID_AUDIO: 415,
    protocol.ERR_UNSUPPORTED_FORMAT: 415,
    protocol.ERR_NO_AUDIO: 422,
    protocol.ERR_TOO_LONG: 413,
}


def _error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"type": protocol.ERROR, "code": code, "message": message}, status, headers=headers)


def _ctx(request: Request) -> ServerContext:
    return request.app.state.ctx


@router.post("/v1/classify")
async def classify(
    request: Request,
    model: str | None = Query(None, description="model NAME or NAME@VERSION; default: the server's first model"),
    threshold: float | None = Query(None, gt=0.0, le=1.0, description="θ for this clip"),
    trace: bool = Query(False, description="include the top scores of every frame"),
    token: str | None = Query(None, include_in_schema=False),
) -> Response:
    """Classify a WAV or FLAC body; answers the decision a stream of the same audio would get."""
    ctx = _ctx(request)
    settings = ctx.settings
    if not ctx.authorised(request.headers, request.query_params):
        return _error(401, protocol.ERR_UNAUTHORIZED, "missing or invalid API key", {"WWW-Authenticate": "Bearer"})
    if ctx.draining:
        return _error(503, protocol.ERR_SHUTTING_DOWN, "the server is shutting down", {"Retry-After": "5"})
    try:
        chosen = resolve_model(ctx.models, model)
    except KeyError:
        return _error(400, protocol.ERR_UNKNOWN_MODEL, f"unknown model {model!r}; available: {sorted(ctx.models)}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_classify_bytes:
        return _error(413, protocol.ERR_TOO_BIG, f"body larger than {settings.max_classify_bytes} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > settings.max_classify_bytes:
            return _error(413, protocol.ERR_TOO_BIG, f"body larger than {settings.max_classify_bytes} bytes")
    received = time.perf_counter()
    theta = threshold if threshold is not None else chosen.threshold
    async with ctx.classify_slots:
        try:
            result = await run_in_threadpool(_classify_body, bytes(body), chosen, theta, trace, settings.max_stream_seconds)
        except AudioError as err:
            return _error(_AUDIO_ERROR_STATUS.get(err.code, 400), err.code, str(err))
    result["processing_ms"] = round((time.perf_counter() - received) * 1000.0, 3)
    ctx.metrics.decisions.labels(model=chosen.name, label=result["label"], early=str(result["early"]).lower(),
                                 endpointed="false").inc()
    return JSONResponse(result)


def _classify_body(body: bytes, model, threshold: float, trace: bool, max_seconds: float) -> dict:
    samples, rate = decode_clip(body)
    if samples.shape[0] / rate > max_seconds:
        raise AudioError(protocol.ERR_TOO_LONG, f"the clip is longer than the limit of {max_seconds:g} s")
    audio = to_model_rate(samples, rate, model.info.sample_rate)
    return classify_samples(model, audio, threshold, trace)


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    ctx = _ctx(request)
    return {
        "protocol": protocol.PROTOCOL_VERSION,
        "models": [model.describe(default=i == 0) for i, model in enumerate(ctx.models.values())],
    }


@router.get("/healthz")
async def healthz() -> dict:
    """The process is alive and its event loop answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready for new streams: models loaded, engines running, not draining."""
    ctx = _ctx(request)
    stalled = ctx.stalled_models
    status = "ready" if ctx.ready else "draining" if ctx.draining else "stalled" if stalled else "starting"
    body = {
        "status": status,
        "sessions": len(ctx.sessions),
        "max_sessions": ctx.settings.max_sessions,
        "load": round(ctx.load, 4),
        "max_load": ctx.settings.max_load,
        "admits_up_to": ctx.admits_up_to,
        "models": [model.full_name for model in ctx.models.values()],
    }
    if stalled:
        body["stalled_models"] = stalled
    return JSONResponse(body, 200 if ctx.ready else 503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    ctx = _ctx(request)
    ctx.report_load()
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
