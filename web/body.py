"""Checks every JSON request body before Litestar converts it: the content type, the nesting,
strict types and control characters.

Litestar's own conversion is lenient (it turns ``"7"`` into ``7``, takes ``text/plain``, and a body
nested 100,000 deep raised ``RecursionError``: a 500). This hook runs after the guards, so a keyless
write still gets its 401 first, and before the handler's arguments are built, so a refused body
changes nothing.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, HTTPException, ValidationException

#: The body methods; a GET or DELETE has no body to check.
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
#: C0 and C1 control characters and DEL: never part of an identifier, a ticker or a model name.
_CONTROL: Final = frozenset(chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)])


class UnsupportedMediaTypeError(HTTPException):
    status_code = 415


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _control_character_path(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first string (key or value) holding a control character."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _CONTROL.isdisjoint(item):
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not _CONTROL.isdisjoint(key):
                    return where
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{index}]") for index, inner in enumerate(item))
    return None


async def check_json_body(request: Request[Any, Any, Any]) -> None:
    """Refuse a body a JSON route should not take: 415 for another media type, 400 for JSON that
    is malformed or nested too deeply, 422 for a wrong type (strict: no string-to-number coercion)
    or a control character in any string."""
    if request.method not in _BODY_METHODS:
        return
    field = request.route_handler.parsed_data_field
    if field is None:
        return
    body = await request.body()
    if not body:
        return  # Litestar answers a missing body itself (422, "data" is required).
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise UnsupportedMediaTypeError(
            detail=f"this endpoint takes application/json, not {content_type or 'an untyped body'!r}"
        )
    try:
        document = msgspec.json.decode(body)
    except RecursionError:
        raise ClientException(detail="the JSON body is nested too deeply") from None
    except msgspec.DecodeError as exc:
        raise ClientException(detail=f"malformed JSON body: {exc}") from None
    where = _control_character_path(document)
    if where is not None:
        raise ValidationException(
            detail=f"{where}: control characters are not allowed",
            extra=[
                {"key": where.removeprefix("$."), "message": "control characters are not allowed"}
            ],
        )
    try:
        msgspec.json.decode(body, type=field.annotation)
    except msgspec.ValidationError as exc:
        message = str(exc)
        key = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else None
        raise ValidationException(
            detail=message,
            extra=[{"key": key, "message": message} if key else {"message": message}],
        ) from None
