"""Keeps secrets out of the access log: the value of a query parameter that looks like a key.

A client that puts its API key in the URL (``?api_key=...``) is wrong, but the key must still not
be written to uvicorn's access log, where anyone who can read the logs would find it.
"""

from __future__ import annotations

import logging
import re
from typing import Final

#: A query parameter whose name holds one of these words has its value replaced.
_SECRET_PARAMETER: Final = re.compile(
    r"(?P<name>[^&=?#]*(?:key|token|secret|password|passwd|auth)[^&=?#]*)=(?P<value>[^&#]*)",
    re.IGNORECASE,
)
REDACTED: Final = "REDACTED"


def redact_query(path: str) -> str:
    """``path`` with the values of secret-looking query parameters replaced."""
    head, separator, query = path.partition("?")
    if not separator:
        return path
    return head + "?" + _SECRET_PARAMETER.sub(rf"\g<name>={REDACTED}", query)


class RedactSecretsFilter(logging.Filter):
    """A filter for the ``uvicorn.access`` logger (its third argument is the path and query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Add the filter once to the access logger (uvicorn keeps its configured handlers)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(item, RedactSecretsFilter) for item in access.filters):
        access.addFilter(RedactSecretsFilter())
