"""The OpenAPI document (``/schema``) and Swagger UI (``/schema/swagger``), usable offline.

Swagger UI's assets are vendored under ``web/static/swagger`` (swagger-ui-dist, pinned, with its
licence) and served by the app itself, so the documentation works without a CDN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec
import msgspec.inspect

# Litestar's own schema plugin for msgspec structs has no public name; extending it keeps every
# struct documented exactly as before, plus what the subclass adds.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
    SecurityScheme,
    Tag,
)

from web.auth import API_KEY_HEADER, SECURITY_SCHEME

if TYPE_CHECKING:
    from collections.abc import Iterator

    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Reference
    from litestar.typing import FieldDefinition

STATIC_DIRECTORY: Final = Path(__file__).resolve().parent / "static"
STATIC_PATH: Final = "/static"
SWAGGER_ASSETS: Final = f"{STATIC_PATH}/swagger"

_DESCRIPTION = """\
Precomputed stock forecasts, measured against the naive forecast.

A scheduler keeps each watched symbol's prices fresh, retrains its LSTM, promotes a model only when
it passes the promotion gate, and stores forecasts; this API serves them, manages the watchlist,
queues training, predicts on demand and streams what happens.

**Auth**: every write needs an `X-API-Key` header holding one of `STOCKCAST_API_KEYS`; reads are
open unless `STOCKCAST_REQUIRE_KEY_FOR_READS` is set. **Errors** are RFC 9457 problem details
(`application/problem+json`) with a stable `type` URN.
"""

_TAGS = [
    Tag(name="watchlist", description="Symbols the scheduler keeps forecasting."),
    Tag(name="forecasts", description="Stored forecasts, their history and realised accuracy."),
    Tag(name="on-demand", description="Queue a training; forecast now with a stored model."),
    Tag(name="jobs", description="What the scheduler has queued, runs and ran."),
    Tag(name="models", description="Trained model versions and their backtests."),
    Tag(name="events", description="Live server-sent events."),
    Tag(name="operations", description="Metrics for Prometheus."),
    Tag(name="health", description="Liveness and readiness probes."),
]


def openapi_config(*, title: str, version: str, keys_for_reads: bool = False) -> OpenAPIConfig:
    """``keys_for_reads``: document the key as needed everywhere, not only on writes."""
    return OpenAPIConfig(
        title=title,
        version=version,
        description=_DESCRIPTION,
        path="/schema",
        tags=_TAGS,
        security=[{SECURITY_SCHEME: []}] if keys_for_reads else None,
        components=Components(
            security_schemes={
                SECURITY_SCHEME: SecurityScheme(
                    type="apiKey",
                    name=API_KEY_HEADER,
                    security_scheme_in="header",
                    description="One of the keys in STOCKCAST_API_KEYS.",
                )
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
            )
        ],
    )


@dataclass
class OptionalBodyOperation(Operation):
    """The ``operation_class`` of a route whose body may be left out (``data: T | None = None``):
    Litestar documents every request body as required, and a client reading the document would
    send one it does not need (a fuzzer would expect a request without one to be refused)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


#: The class attribute a request payload sets to the fewest fields it accepts (``PATCH`` bodies).
MIN_FIELDS_ATTRIBUTE: Final = "min_fields"


class StrictPayloadSchemaPlugin(StructSchemaPlugin):
    """Documents what a request payload refuses, as Litestar's own struct schemas do not: a struct
    decoded with ``forbid_unknown_fields`` gets ``additionalProperties: false`` (an unknown field
    is a 422), and one with a ``min_fields`` class attribute gets ``minProperties`` (``PATCH`` with
    ``{}`` is a 422). A list of constrained strings (``list[Symbol]``) keeps its items' pattern and
    lengths, which Litestar drops. Otherwise the document would call requests valid that the API
    refuses."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        config: msgspec.structs.StructConfig = field_definition.type_.__struct_config__
        return config.forbid_unknown_fields

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        min_fields = getattr(field_definition.type_, MIN_FIELDS_ATTRIBUTE, None)
        if min_fields is not None:
            schema.min_properties = min_fields
        for name, items in _string_list_items(field_definition.type_):
            for array in _array_schemas((schema.properties or {}).get(name)):
                array.items = items
        return schema


def _string_list_items(struct: type[msgspec.Struct]) -> Iterator[tuple[str, Schema]]:
    """Each field of ``struct`` that is a list of constrained strings, with its items' schema."""
    info = msgspec.inspect.type_info(struct)
    if not isinstance(info, msgspec.inspect.StructType):
        return
    for field in info.fields:
        kinds = (
            field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        )
        for kind in kinds:
            listed = kind.type if isinstance(kind, msgspec.inspect.Metadata) else kind
            if not isinstance(listed, msgspec.inspect.ListType):
                continue
            item = listed.item_type
            text = item.type if isinstance(item, msgspec.inspect.Metadata) else item
            if isinstance(text, msgspec.inspect.StrType):
                yield (
                    field.encode_name,
                    Schema(
                        type=OpenAPIType.STRING,
                        pattern=text.pattern,
                        min_length=text.min_length,
                        max_length=text.max_length,
                    ),
                )


def _array_schemas(schema: Schema | Reference | None) -> Iterator[Schema]:
    """The array schemas in a property's schema: itself, or the alternatives of its ``oneOf``."""
    if not isinstance(schema, Schema):
        return
    if schema.type == OpenAPIType.ARRAY:
        yield schema
    for alternative in schema.one_of or ():
        yield from _array_schemas(alternative)
