"""The README works as written: every ``curl`` example of its "Using the API" block, extracted
from README.md itself, runs against ``stockcast up`` on the default source (the bundled sample,
SPY watched, the market replay on) and answers the status its comment names (else 200)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
STATUS_IN_COMMENT = re.compile(r"#\s*(\d{3})\b")


@dataclass(frozen=True)
class Example:
    command: str
    expected: int


def readme_examples(text: str) -> list[Example]:
    """The ``curl`` lines of the block under "## Using the API", continuation lines joined, and
    the status each one's comment names (200 when it names none)."""
    section = text.split("## Using the API", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    examples: list[Example] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.strip()
        if pending:
            pending += " " + line
        elif line.startswith("curl "):
            pending = line
        else:
            if line.startswith("#") and examples and STATUS_IN_COMMENT.search(line):
                # A comment on its own line after a command describes that command.
                last = examples[-1]
                status = int(STATUS_IN_COMMENT.search(line).group(1))  # type: ignore[union-attr]
                examples[-1] = Example(command=last.command, expected=status)
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        command, _, comment = pending.partition("   #")
        if not comment:
            command, _, comment = pending.partition("  #")
        found = STATUS_IN_COMMENT.search("#" + comment)
        examples.append(
            Example(command=command.strip(), expected=int(found.group(1)) if found else 200)
        )
        pending = ""
    return examples


def test_the_readme_examples_are_found() -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    commands = [example.command for example in examples]
    assert len(examples) >= 18
    assert all(command.startswith("curl ") for command in commands)
    assert {example.expected for example in examples} >= {200, 201, 202}
    assert any("/train" in command for command in commands)
    assert not any("DIS" in command for command in commands)  # not in the sample


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _up(cwd: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKCAST_")}
    env.update({"STOCKCAST_DATA_DIR": str(cwd / "var"), "STOCKCAST_INITIAL_TRAIN_EPOCHS": "1"})
    command = [sys.executable, "-m", "stockcast", "up", "--source", "sample", "--watch", "SPY"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait(check: Callable[[], Any], *, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out after {within:g} s waiting for {what}")


def _run(command: str, *, base: str, key: str, job_id: str) -> tuple[int, str]:
    """Run one example with real curl, as a shell would expand it; returns status and body."""
    expanded = command.replace("$API", base).replace("$KEY", key).replace("<job-id>", job_id)
    argv = shlex.split(expanded)
    streaming = "-sN" in argv
    argv += ["-w", "\n%{http_code}", "--max-time", "3" if streaming else "60"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def test_every_curl_example_of_the_readme_works_on_the_default(tmp_path: Path) -> None:
    examples = readme_examples(README.read_text(encoding="utf-8"))
    with _up(tmp_path) as base:
        key_file = tmp_path / "var" / "api-key"
        _wait(lambda: httpx.get(f"{base}/symbols/SPY").status_code == 200, within=120, what="up")
        key = key_file.read_text(encoding="utf-8").strip()
        # What a reader has a few minutes after `make up`: SPY's first model and matured
        # forecasts (the replay), which the model and accuracy examples read.
        _wait(
            lambda: httpx.get(f"{base}/models", params={"symbol": "SPY"}).json(),
            within=300,
            what="SPY's first model version",
        )
        _wait(
            lambda: httpx.get(f"{base}/symbols/SPY/accuracy").json().get("evaluated"),
            within=120,
            what="matured forecasts",
        )
        job_id = ""
        failures: list[str] = []
        for example in examples:
            if "/predict" in example.command and job_id:
                _wait(
                    lambda url=f"{base}/jobs/{job_id}": (
                        httpx.get(url).json()["status"] == "succeeded"
                    ),
                    within=400,
                    what="the README's training job",
                )
            status, body = _run(example.command, base=base, key=key, job_id=job_id or "none")
            if "/train" in example.command and status == 202:
                job_id = re.search(r'"id"\s*:\s*"([^"]+)"', body).group(1)  # type: ignore[union-attr]
            if status != example.expected:
                failures.append(
                    f"{example.command}\n  -> {status} (expected {example.expected}): {body[:300]}"
                )
    assert not failures, "\n".join(failures)
