# syntax=docker/dockerfile:1
# Two images from one file:
# - the service (the default target, `runtime`): every stockcast role, `api`, `scheduler` and
#   `db upgrade` (the compose `migrate` service); the command picks the role. It carries the MLflow
#   client (mlflow-skinny), not the server.
# - `--target mlflow`: the MLflow tracking server and UI (the compose `mlflow` service), with
#   psycopg for its PostgreSQL backend store. No PyTorch.
#
#   docker build -t stockcast .                                   CPU PyTorch (default)
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t stockcast:gpu .
#   docker build --target mlflow -t stockcast-mlflow .

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- mlflow: the tracking server
FROM python:${PYTHON_VERSION}-slim-bookworm AS mlflow
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml deploy/slim-venv.sh /tmp/build/
# The server is the project's `server` extra (one place says which MLflow), installed alone.
RUN python -c "import tomllib; print(*tomllib.load(open('/tmp/build/pyproject.toml', 'rb'))['project']['optional-dependencies']['server'], sep='\n')" >/tmp/build/server.txt \
    && python -m venv /opt/mlflow \
    && /opt/mlflow/bin/pip install -r /tmp/build/server.txt "psycopg[binary]>=3.2" \
    && sh /tmp/build/slim-venv.sh /opt/mlflow \
    && rm -rf /tmp/build \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin mlflow \
    && mkdir -p /mlartifacts && chown mlflow:mlflow /mlartifacts
ENV PATH=/opt/mlflow/bin:$PATH PYTHONUNBUFFERED=1
USER mlflow
WORKDIR /home/mlflow
VOLUME ["/mlartifacts"]
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=30 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
ENTRYPOINT ["mlflow"]
CMD ["server", "--host", "0.0.0.0", "--port", "5000"]

# ---------------------------------------------------------------- build: the service's virtualenv
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# binutils: `strip`, for slim-venv.sh
RUN apt-get update -q && apt-get install -y -q --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# PyTorch first, from the CPU (or CUDA) index, so the project's `torch>=2.2` is already satisfied
# and the default PyPI build (several GB of CUDA libraries) is never pulled in by accident.
RUN pip install --no-compile --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY stockcast ./stockcast
COPY forecasting ./forecasting
COPY db ./db
COPY scheduler ./scheduler
COPY web ./web
COPY migrations ./migrations
RUN pip install --no-compile .
COPY deploy/slim-venv.sh /tmp/slim-venv.sh
RUN sh /tmp/slim-venv.sh /opt/venv
# Byte code only for what the roles run. pip compiled nothing; this run (the migrations, a
# one-epoch training of the bundled SPY with its backtest, chart and MLflow logging and registry,
# the API's, the scheduler's and the MLflow client's REST modules) makes Python write the .pyc of
# every module it imports: 116 MB in 5,000 files, where compiling all 12,000 would be 230 MB. A
# module first imported later is compiled in memory. The run is also the image's smoke test: the
# build fails if a training cannot run in it.
RUN export STOCKCAST_DATA_DIR=/tmp/warm-up STOCKCAST_SOURCE=sample STOCKCAST_LOG_LEVEL=WARNING \
    && cd /tmp && stockcast db upgrade \
    && stockcast train SPY --epochs 1 --folds 1 --test-size 20 \
    && python -c "import web.app, scheduler.daemon, scheduler.tasks, stockcast.commands.health, psutil, psycopg, urllib.request, yfinance, curl_cffi.requests, arch.univariate, granian, kiwisolver, matplotlib.pyplot, scipy.optimize, mlflow.store.tracking.rest_store, mlflow.store.model_registry.rest_store, mlflow.store.artifact.http_artifact_repo, mlflow.store.artifact.mlflow_artifacts_repo" \
    && rm -rf /tmp/warm-up /root/.cache

# ---------------------------------------------------------------- runtime: no compilers, no root
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stockcast \
    && mkdir -p /data && chown stockcast:stockcast /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STOCKCAST_DATA_DIR=/data \
    STOCKCAST_HOST=0.0.0.0 \
    STOCKCAST_PORT=8000 \
    MPLCONFIGDIR=/tmp/matplotlib
USER stockcast
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# `stockcast health` knows the container's role from its main process: the API answers /health on
# its port; a scheduler process runs and reaches the database. `docker exec CONTAINER stockcast
# health` prints what it found.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["stockcast", "health"]
ENTRYPOINT ["stockcast"]
CMD ["api"]
