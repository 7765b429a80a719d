"""A bad query parameter is named as the client wrote it (``from``, not ``start``) and where it
was (``"source": "query"``, not ``ParamType.QUERY``)."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.params import ParameterKwarg, QueryParameter
from litestar.testing import TestClient

from web.errors import QUERY_PARAMETER_NAMES


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/symbols/SPY/forecasts?from=garbage", "from"),
        ("/symbols/SPY/forecasts?to=2020-13-01", "to"),
        ("/symbols/SPY/accuracy?from=yesterday", "from"),
        ("/jobs?limit=0", "limit"),
        ("/jobs?status=weird", "status"),
    ],
)
def test_a_bad_query_parameter_is_named_as_written(
    client: TestClient[Any], url: str, key: str
) -> None:
    response = client.get(url)
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"].startswith(f"{key}: ")
    assert problem["errors"][0]["key"] == key
    assert problem["errors"][0]["source"] == "query"


def test_every_renamed_query_parameter_is_known(client: TestClient[Any]) -> None:
    """The map the errors use covers every handler parameter whose wire name differs."""
    renamed: dict[str, str] = {}
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            for name, parameter in handler.parsed_fn_signature.parameters.items():
                definition = parameter.kwarg_definition
                if isinstance(definition, QueryParameter):
                    wire = definition.query or getattr(definition, "name", None)
                elif isinstance(definition, ParameterKwarg):
                    wire = definition.query
                else:
                    continue
                if wire not in (None, name):
                    renamed[name] = wire
    assert renamed, "expected the from/to parameters"
    assert renamed == {name: QUERY_PARAMETER_NAMES[name] for name in renamed}
