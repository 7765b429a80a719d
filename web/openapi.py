"""The OpenAPI document (``/schema``) and Swagger UI (``/schema/swagger``), usable offline.

Swagger UI's assets are vendored under ``web/static/swagger`` (swagger-ui-dist, pinned, with its
licence) and served by the app itself, so the documentation works without a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

# Litestar's own schema plugin for msgspec structs has no public name; extending it keeps every
# struct documented exactly as before, plus what the subclass adds.
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag

from web.auth import API_KEY_HEADER, SECURITY_SCHEME

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.openapi.spec import Schema
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


#: The class attribute a request payload sets to the fewest fields it accepts (``PATCH`` bodies).
MIN_FIELDS_ATTRIBUTE: Final = "min_fields"


class StrictPayloadSchemaPlugin(StructSchemaPlugin):
    """Documents what a request payload refuses, as Litestar's own struct schemas do not: a struct
    decoded with ``forbid_unknown_fields`` gets ``additionalProperties: false`` (an unknown field
    is a 422), and one with a ``min_fields`` class attribute gets ``minProperties`` (``PATCH`` with
    ``{}`` is a 422). Otherwise the document would call requests valid that the API refuses."""

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
        return schema
