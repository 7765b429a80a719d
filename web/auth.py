"""API-key authentication: every write needs ``X-API-Key``; reads only when configured.

Keys are compared as SHA-256 digests with :func:`hmac.compare_digest`, against every configured
key without stopping at the first match, so neither the length of a key nor which key matched
shows in the response time. With no key configured the server refuses writes outright (a service
left open by accident is worse than one that says how to configure it).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, Final

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from web.errors import MissingApiKeyError

API_KEY_HEADER: Final = "X-API-Key"
#: The OpenAPI security scheme name routes refer to.
SECURITY_SCHEME: Final = "ApiKey"
READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
STATE_KEY: Final = "api_keys"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class ApiKeyChecker:
    """Knows the configured keys (as digests only) and whether reads need one."""

    def __init__(self, keys: Iterable[str], *, require_for_reads: bool) -> None:
        self._digests = tuple(_digest(key) for key in keys)
        self.require_for_reads = require_for_reads

    @property
    def configured(self) -> bool:
        return bool(self._digests)

    def check(self, supplied: str | None, *, write: bool) -> None:
        """Return if the request may go on; raise :class:`MissingApiKeyError` (401) otherwise."""
        if not write and not self.require_for_reads:
            return
        if not self._digests:
            raise MissingApiKeyError(configured=False, supplied=supplied is not None)
        if not supplied:
            raise MissingApiKeyError(configured=True, supplied=False)
        candidate = _digest(supplied)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(digest, candidate)
        if not matched:
            raise MissingApiKeyError(configured=True, supplied=True)


async def counts_against_rate_limit(request: Request[Any, Any, Any]) -> bool:
    """The rate limiter's ``check_throttle_handler``: only a request that passes the key check
    is counted. The limiter runs before the guards, so without this a keyless write could get a
    429 instead of its 401, and a stranger's 401s would use up a key holder's limit."""
    checker: ApiKeyChecker = request.app.state[STATE_KEY]
    try:
        checker.check(
            request.headers.get(API_KEY_HEADER),
            write=request.scope.get("method", "GET") not in READ_METHODS,
        )
    except MissingApiKeyError:
        return False
    return True


async def require_api_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Litestar guard on every resource controller (not on ``/health``, ``/ready``, ``/schema``).

    A coroutine on purpose: Litestar runs a synchronous guard in a worker thread, and that hop
    alone would cost the cached forecast read most of its speed.
    """
    checker: ApiKeyChecker = connection.app.state[STATE_KEY]
    checker.check(
        connection.headers.get(API_KEY_HEADER),
        write=connection.scope.get("method", "GET") not in READ_METHODS,
    )


#: OpenAPI ``security`` of a route that needs the key.
KEY_REQUIRED: Final[list[dict[str, list[str]]]] = [{SECURITY_SCHEME: []}]
