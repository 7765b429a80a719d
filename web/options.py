"""``OPTIONS`` answers that list every method of the resource, and the request hook that runs
before every handler.

Litestar builds a path's ``OPTIONS`` handler with the first route registered for it and keeps it
when routes for other methods of the same path are merged in, so ``OPTIONS /symbols`` said
``Allow: GET, OPTIONS`` while the path also takes ``POST`` and ``DELETE``. The hook answers
``OPTIONS`` itself from the application's final route table.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.status_codes import HTTP_204_NO_CONTENT

from web.body import check_json_body


def allowed_methods(request: Request[Any, Any, Any]) -> str:
    """The methods the matched path takes, as an ``Allow`` value (sorted, ``OPTIONS`` included)."""
    methods: set[str] = {"OPTIONS"}
    for path in request.route_handler.paths:
        methods.update(request.app.route_handler_method_map.get(path, {}))
    return ", ".join(sorted(methods))


async def before_request(request: Request[Any, Any, Any]) -> Response[None] | None:
    """``OPTIONS`` gets its complete ``Allow``; any other request has its JSON body checked."""
    if request.method == "OPTIONS":
        return Response(
            None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allowed_methods(request)}
        )
    await check_json_body(request)
    return None
