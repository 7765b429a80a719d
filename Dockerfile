# syntax=docker/dockerfile:1
# One image for every role: `api`, `scheduler`, `db upgrade` (the compose `migrate` service) and
# `mlflow server`. The command picks the role.
#
#   docker build -t stockcast .                                   CPU PyTorch (default)
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t stockcast:gpu .

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------- build: a virtualenv with everything
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# PyTorch first, from the CPU (or CUDA) index, so the project's `torch>=2.2` is already satisfied
# and the default PyPI build (several GB of CUDA libraries) is never pulled in by accident.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY stockcast ./stockcast
COPY forecasting ./forecasting
COPY db ./db
COPY scheduler ./scheduler
COPY web ./web
COPY migrations ./migrations
RUN pip install . && python -c "import stockcast.cli, web.app, scheduler, forecasting.predictor"

# ---------------------------------------------------------------- runtime: no compilers, no root
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin stockcast \
    && mkdir -p /data /mlartifacts && chown stockcast:stockcast /data /mlartifacts
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
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["stockcast"]
CMD ["api"]
