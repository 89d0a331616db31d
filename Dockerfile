# syntax=docker/dockerfile:1
# One image for every service and process kind (DESIGN §6):
#   web:     deploy/bin/web <service>                (default CMD: gunicorn, gthread workers)
#   worker:  python -m services.<service>.worker     (outbox relay + consumers, metrics port)
#   one-shot job: python -m services.common.messaging.topics, then
#                 python -m services.common.db.migrations <service>...
# Build: docker build -t bbi:latest .

# --- builder: wheels for the project and every dependency (no compilers in the runtime) ----
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY services ./services
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    BBI_SERVICE=registration \
    PORT=8001 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-index --find-links=/wheels bbi \
    && groupadd --system --gid 10001 bbi \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin bbi

WORKDIR /app
# Only the start script and gunicorn settings: the code itself is the installed package.
COPY --chown=root:root deploy/bin/web deploy/bin/web
COPY --chown=root:root deploy/gunicorn.conf.py deploy/gunicorn.conf.py

# Runs as non-root; the root filesystem can be read-only (only /tmp must be writable).
USER 10001:10001
EXPOSE 8001 8002 8003 8004 9101 9102 9103 9104

# No HEALTHCHECK here: the right probe differs per process kind (compose and k8s define it).
# exec form via sh so $BBI_SERVICE chooses the service; `docker run IMAGE deploy/bin/web training`
# or `... python -m services.training.worker` override it.
CMD ["sh", "-c", "exec deploy/bin/web \"$BBI_SERVICE\""]
