# firstspike streaming server: the `serve` extra only (onnxruntime, no torch), bundled default model.
#
#   docker build -t firstspike .
#   docker run -p 8000:8000 firstspike
#
# Configure with FIRSTSPIKE_* env vars (docs/deployment.md lists them), e.g.
#   docker run -p 8000:8000 -e FIRSTSPIKE_MAX_SESSIONS=500 -e FIRSTSPIKE_API_KEYS=secret firstspike
# On a CPU with VNNI, the shipped int8 variant of the bundled model serves more streams per core:
#   docker run -p 8000:8000 -e FIRSTSPIKE_MODELS=bundled-int8 firstspike
# Serve your own model by mounting it:
#   docker run -p 8000:8000 -v "$PWD/my.onnx:/models/my.onnx:ro" -e FIRSTSPIKE_MODELS=/models/my.onnx firstspike

# --- builder: a virtualenv with the serve extra, trimmed (scripts/install-serve-venv.sh) -------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY scripts/install-serve-venv.sh ./scripts/
RUN bash scripts/install-serve-venv.sh /opt/firstspike /src

# --- runtime: the same base, the virtualenv, a non-root user --------------------------------------------
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="firstspike" \
      org.opencontainers.image.description="Real-time keyword spotting with rank-coded LSTMs: websocket server on onnxruntime" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin firstspike

COPY --from=builder /opt/firstspike /opt/firstspike

# Bind every interface inside the container; the server's own default (127.0.0.1) suits a laptop.
ENV PATH=/opt/firstspike/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FIRSTSPIKE_HOST=0.0.0.0 \
    FIRSTSPIKE_PORT=8000 \
    FIRSTSPIKE_LOG_FORMAT=json

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000

# /healthz says the process is alive; readiness (/readyz) is for load balancers, not for restarts.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FIRSTSPIKE_PORT', '8000'), timeout=2)"]

# The server handles SIGTERM itself: /readyz turns 503 and open streams drain (FIRSTSPIKE_GRACE_PERIOD_S).
STOPSIGNAL SIGTERM
ENTRYPOINT ["firstspike"]
CMD ["serve"]
