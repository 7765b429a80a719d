"""Secrets are never echoed in a configuration error nor written to the access log."""

from __future__ import annotations

import io
import logging

import pytest

from stockcast.redaction import RedactSecretsFilter, install_access_log_redaction, redact_query
from stockcast.settings import Settings, SettingsError


def test_a_rejected_api_key_is_not_echoed_in_the_configuration_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STOCKCAST_API_KEYS": "long-enough-key-000000,tooshort9"})
    message = str(caught.value)
    assert "STOCKCAST_API_KEYS" in message
    assert "at least 16 characters" in message
    assert "tooshort9" not in message
    assert "long-enough-key-000000" not in message


def test_a_database_password_is_masked_in_a_configuration_error() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"STOCKCAST_DATABASE_URL": "mysql://app:hunter2secret@db/x"})
    assert "hunter2secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/symbols?api_key=abcdef0123456789", "/symbols?api_key=REDACTED"),
        ("/x?symbol=KO&X-API-Key=abc&token=t1", "/x?symbol=KO&X-API-Key=REDACTED&token=REDACTED"),
        ("/forecasts/KO?horizon=5", "/forecasts/KO?horizon=5"),
        ("/health", "/health"),
    ],
)
def test_secret_query_parameters_are_redacted(path: str, expected: str) -> None:
    assert redact_query(path) == expected


def test_a_key_in_a_query_string_never_reaches_the_access_log() -> None:
    # The record uvicorn's access logger writes: (client, method, path with query, http, status).
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    install_access_log_redaction()
    install_access_log_redaction()  # idempotent
    try:
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            "/symbols?api_key=abcdef0123456789",
            "1.1",
            200,
        )
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
        for item in [f for f in access.filters if isinstance(f, RedactSecretsFilter)]:
            access.removeFilter(item)
    line = stream.getvalue()
    assert "abcdef0123456789" not in line
    assert "GET /symbols?api_key=REDACTED HTTP/1.1" in line
    assert sum(isinstance(f, RedactSecretsFilter) for f in access.filters) == 0
