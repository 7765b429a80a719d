"""API-key checks: writes always need a key, reads only when configured."""

from __future__ import annotations

import pytest

from web.auth import ApiKeyChecker
from web.errors import MissingApiKeyError

KEYS = ("first-key-0123456789", "second-key-0123456789")


def test_reads_are_open_unless_configured() -> None:
    ApiKeyChecker(KEYS, require_for_reads=False).check(None, write=False)
    with pytest.raises(MissingApiKeyError):
        ApiKeyChecker(KEYS, require_for_reads=True).check(None, write=False)
    ApiKeyChecker(KEYS, require_for_reads=True).check(KEYS[0], write=False)


@pytest.mark.parametrize("key", KEYS)
def test_any_configured_key_may_write(key: str) -> None:
    ApiKeyChecker(KEYS, require_for_reads=False).check(key, write=True)


@pytest.mark.parametrize(
    ("supplied", "message"),
    [
        (None, "needs an API key"),
        ("", "needs an API key"),
        ("first-key-012345678", "does not hold a valid API key"),
        ("first-key-01234567890", "does not hold a valid API key"),
        ("FIRST-KEY-0123456789", "does not hold a valid API key"),
    ],
)
def test_writes_without_a_valid_key_are_refused(supplied: str | None, message: str) -> None:
    with pytest.raises(MissingApiKeyError, match=message):
        ApiKeyChecker(KEYS, require_for_reads=False).check(supplied, write=True)


def test_without_keys_writes_are_refused_with_instructions() -> None:
    checker = ApiKeyChecker((), require_for_reads=False)
    assert not checker.configured
    with pytest.raises(MissingApiKeyError, match="STOCKCAST_API_KEYS"):
        checker.check("anything-at-all-0123", write=True)
    checker.check(None, write=False)


def test_the_checker_keeps_no_plain_key() -> None:
    checker = ApiKeyChecker(KEYS, require_for_reads=False)
    assert all(key not in repr(vars(checker)) for key in KEYS)
