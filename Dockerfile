# syntax=docker/dockerfile:1
#
# Cinemate interaction-recommender service.
#   docker build -t cinemate/interaction-recommender .
#   docker run -p 8090:8000 cinemate/interaction-recommender     # embedded mode (SQLite in /app/var)
# The platform deployment (Postgres, Redis, Kafka) is docker-compose.yml beside this file.

# --- builder: a wheel of the project, installed with its dependencies into /opt/venv ----------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build
RUN python -m venv /opt/venv

# Dependencies first, from pyproject.toml alone, so a source change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/venv/bin/pip install -r requirements.txt

# The project itself (hatchling needs README.md for the metadata and the version from the package).
COPY README.md ./
COPY src ./src
RUN python -m pip wheel --no-deps --wheel-dir /build/dist . \
    && /opt/venv/bin/pip install /build/dist/*.whl \
    && /opt/venv/bin/pip check

# --- runtime: the venv only, run as a fixed non-root uid ----------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/app/var \
    MODEL_PATH=/app/models/recommender.pkl

RUN groupadd --system --gid 10001 recommender \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin recommender

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
RUN mkdir -p /app/models /app/var \
    && chown -R 10001:10001 /app

USER 10001:10001

EXPOSE 8000

# The slim image has no curl. urlopen raises on 4xx/5xx (GET /health answers 503 when unhealthy),
# so any non-2xx answer, a refused connection or a timeout exits non-zero.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4); sys.exit(0 if 200 <= r.status < 300 else 1)"]

CMD ["recommender", "serve"]
