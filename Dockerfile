# vidx application image (ingest daemon, web UI, setup jobs).
# The default torch from PyPI is a CUDA build, so the same image runs the GPU ingest.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HOME=/models VIDX_WATCH_DIR=/watch VIDX_DATA_DIR=/data
ARG TORCH_SPEC="torch>=2.4,<2.14"
ARG EXTRAS="gpu"

RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
RUN pip install "${TORCH_SPEC}"
COPY pyproject.toml README.md ./
COPY vidx ./vidx
COPY ingest ./ingest
COPY search_ui ./search_ui
COPY mappings ./mappings
COPY docker ./docker
RUN pip install ".[${EXTRAS}]"

RUN useradd --system --uid 1000 --home /app vidx && mkdir -p /watch /data /models && chown vidx /data /models
USER vidx
EXPOSE 8080
HEALTHCHECK CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
CMD ["vidx", "run"]
