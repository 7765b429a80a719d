"""The compose stack, without Docker: every service of ``docker-compose.yml`` started as a plain
process with the command and environment compose would give it (image defaults from the
Dockerfile, ``${VAR:-default}`` interpolation), only host names, ports, database names and
volumes pointed at loopback and temporary directories.

PostgreSQL is the machine's own server; the test creates the two databases the compose stack has
(``stockcast`` and ``mlflow``) under fresh names, and drops them afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "STOCKCAST_TEST_POSTGRES_URL"
API_KEY = "stack-test-key-0123456789abcdef"
#: What an operator would export before `docker compose up`.
OPERATOR_ENV = {
    "STOCKCAST_API_KEYS": API_KEY,
    "STOCKCAST_SOURCE": "sample",
    # The gate is tested elsewhere; here a champion must exist to check the registry alias.
    "STOCKCAST_PROMOTION_POLICY": "always",
    "STOCKCAST_INITIAL_TRAIN_EPOCHS": "1",
    "STOCKCAST_LOG_LEVEL": "WARNING",
}
#: ENV lines of the Dockerfile's runtime stage (the image's defaults).
IMAGE_ENV_LINE = re.compile(r"^\s*(STOCKCAST_\w+|PYTHONUNBUFFERED|MPLCONFIGDIR)=(\S+)")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${NAME}`` / ``${NAME:-default}`` substitution."""
    return INTERPOLATION.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)


def image_environment() -> dict[str, str]:
    """The ``ENV`` defaults of the Dockerfile's runtime stage."""
    text_ = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    runtime = text_[text_.index("AS runtime") :]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        match = IMAGE_ENV_LINE.match(line.replace("ENV ", "").rstrip("\\ "))
        if match:
            env[match.group(1)] = match.group(2)
    return env


@dataclass
class Localizer:
    """Points what compose names (hosts, ports, volumes, database names) at this machine."""

    replacements: dict[str, str] = field(default_factory=dict)

    def __call__(self, value: str) -> str:
        for old, new in self.replacements.items():
            value = value.replace(old, new)
        return value


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]


def compose_services(localize: Localizer, data_dir: Path) -> dict[str, Service]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    image_env = image_environment()
    services: dict[str, Service] = {}
    for name, spec in compose["services"].items():
        if "image" in spec and str(spec["image"]).startswith("postgres"):
            continue  # the machine's own PostgreSQL plays this part
        entrypoint = spec.get("entrypoint", ["stockcast"])
        command = spec.get("command", ["api"])
        argv = [localize(interpolate(str(part), OPERATOR_ENV)) for part in [*entrypoint, *command]]
        env = {key: localize(value) for key, value in image_env.items()}
        for key, value in (spec.get("environment") or {}).items():
            env[key] = localize(interpolate(str(value), OPERATOR_ENV))
        env["STOCKCAST_DATA_DIR"] = str(data_dir / name)
        services[name] = Service(name=name, argv=argv, env=env)
    return services


def _executable(argv: list[str]) -> list[str]:
    """``stockcast`` / ``mlflow`` as installed next to this interpreter (the image's PATH)."""
    return [str(Path(sys.executable).parent / argv[0]), *argv[1:]]


@dataclass
class Stack:
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()

    def start(self, service: Service, label: str | None = None) -> subprocess.Popen[bytes]:
        label = label or service.name
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
        log = (self.logs / f"{label}.log").open("wb")
        process = subprocess.Popen(
            _executable(service.argv),
            env={**base_env, **service.env},
            cwd=self.logs,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[label] = process
        return process

    def log(self, label: str) -> str:
        return (self.logs / f"{label}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> dict[str, int]:
        codes: dict[str, int] = {}
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for label, process in self.processes.items():
            try:
                codes[label] = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[label] = process.wait(timeout=30)
        return codes


def _wait(check: Callable[[], Any], *, within: float, what: str, stack: Stack) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for label, process in stack.processes.items():
            if label != "migrate" and process.poll() is not None:
                raise AssertionError(f"{label} exited ({process.returncode}): {stack.log(label)}")
        try:
            value = check()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {within:g} s waiting for {what}")


@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        pytest.skip(f"PostgreSQL half NOT RUN: set {POSTGRES_ENV} to run it")
    admin = create_engine(
        make_url(admin_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    suffix = f"{os.getpid()}_{int(time.time())}"
    names = {"stockcast": f"stack_app_{suffix}", "mlflow": f"stack_mlflow_{suffix}"}
    with admin.connect() as conn:
        # The compose stack's role; trust authentication on this machine ignores its password.
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = 'stockcast'")).first()
        if not exists:
            conn.execute(text("CREATE ROLE stockcast LOGIN PASSWORD 'stockcast'"))
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER stockcast'))
    try:
        yield names
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_compose_stack_serves_a_forecast_and_registers_a_champion(
    tmp_path: Path, postgres_databases: dict[str, str]
) -> None:
    admin = make_url(os.environ[POSTGRES_ENV])
    pg_host = f"{admin.host or '127.0.0.1'}:{admin.port or 5432}"
    mlflow_port, api_port = _free_port(), _free_port()
    localize = Localizer(
        {f"@postgres:5432/{key}": f"@{pg_host}/{name}" for key, name in postgres_databases.items()}
        | {
            "http://mlflow:5000": f"http://127.0.0.1:{mlflow_port}",
            "mlflow,mlflow:5000,": f"127.0.0.1:{mlflow_port},mlflow,mlflow:5000,",
            "/mlartifacts": str(tmp_path / "mlartifacts"),
            "0.0.0.0": "127.0.0.1",
        }
    )
    services = compose_services(localize, tmp_path / "data")
    assert set(services) == {"mlflow", "migrate", "api", "scheduler"}
    services["mlflow"].argv = [
        str(mlflow_port) if part == "5000" else part for part in services["mlflow"].argv
    ]
    services["api"].env["STOCKCAST_PORT"] = str(api_port)
    stack = Stack(logs=tmp_path)
    mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
    api = f"http://127.0.0.1:{api_port}"
    try:
        stack.start(services["mlflow"])
        _wait(
            lambda: httpx.get(f"{mlflow_uri}/health", timeout=2).status_code == 200,
            within=120,
            what="the MLflow server",
            stack=stack,
        )
        migrate = stack.start(services["migrate"])
        assert migrate.wait(timeout=120) == 0, stack.log("migrate")
        stack.start(services["api"])
        stack.start(services["scheduler"], "scheduler-1")
        stack.start(services["scheduler"], "scheduler-2")
        _wait(
            lambda: httpx.get(f"{api}/ready", timeout=2).status_code == 200,
            within=60,
            what="the API",
            stack=stack,
        )

        registered = httpx.post(
            f"{api}/symbols", json={"symbol": "SPY"}, headers={"X-API-Key": API_KEY}, timeout=30
        )
        assert registered.status_code == 201, registered.text

        def lstm_forecast() -> dict[str, Any] | None:
            response = httpx.get(f"{api}/symbols/SPY/forecast", timeout=5)
            body = response.json() if response.status_code == 200 else None
            return body if body and body["model"]["kind"] == "lstm" else None

        forecast = _wait(lstm_forecast, within=300, what="the champion's forecast", stack=stack)
        assert len(forecast["steps"]) == 5
        assert all(s["lower_95"] <= s["point"] <= s["upper_95"] for s in forecast["steps"])

        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_uri)
        registered_model = client.get_registered_model("stockcast-SPY")
        champion_version = registered_model.aliases["champion"]
        version = client.get_model_version("stockcast-SPY", champion_version)
        run = client.get_run(version.run_id)
        assert run.info.status == "FINISHED"
        assert "lstm_mase" in run.data.metrics
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {
            "model",
            "backtest.png",
        }
        served = httpx.get(f"{api}/models/{forecast['model']['version_id']}", timeout=5).json()
        assert served["status"] == "champion"
        assert served["mlflow"]["run_id"] == version.run_id
        assert served["mlflow"]["registry_version"] == int(version.version)
        # Links point at the MLflow UI as a browser on the host sees it (compose's default).
        assert served["mlflow"]["run_url"] == f"http://localhost:5000/#/runs/{version.run_id}"
    finally:
        codes = stack.stop_all()
    # Every long-running service stops gracefully on SIGTERM (what `docker compose stop` sends).
    assert {label: code for label, code in codes.items() if label != "mlflow"} == {
        "migrate": 0,
        "api": 0,
        "scheduler-1": 0,
        "scheduler-2": 0,
    }
