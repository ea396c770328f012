"""The SDK's Structs against the exchange's own OpenAPI document (``/schema/openapi.json``).

Fails when the two drift apart: a field the SDK reads that the API does not have, a type the
SDK cannot decode, a field the API always sends (or requires) that the SDK does not know.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from buyers_sdk.models import REQUEST_SCHEMAS, RESPONSE_SCHEMAS
from exchange.app import create_app
from exchange.settings import load_settings
from tests.conftest import TEST_SECRET

REF = "#/components/schemas/"
ANY = "any"


@pytest.fixture(scope="module")
def openapi(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("contract")
    shutil.copy(sqlite_template, tmp / "exchange.db")
    settings = load_settings(
        env={},
        database_url=f"sqlite:///{tmp / 'exchange.db'}",
        secret_key=TEST_SECRET,
        var_dir=str(tmp / "var"),
    )
    with TestClient(create_app(settings, in_process_worker=False)) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()["components"]["schemas"]


def sdk_components() -> tuple[dict[str, Any], dict[type, str]]:
    structs = [*RESPONSE_SCHEMAS, *REQUEST_SCHEMAS]
    (_, components) = msgspec.json.schema_components(structs, ref_template=REF + "{name}")
    return components, {s: s.__name__ for s in structs}


def _types(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, as ``type`` or ``type:format`` / ``object:<Component>``."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        target = components[name]
        if "enum" in target or target.get("type") in ("string", "integer"):
            return {target.get("type", "string")}
        if "oneOf" in target or "anyOf" in target:
            return _types(target, components)
        return {f"object:{name}"}
    for union in ("oneOf", "anyOf"):
        if union in schema:
            return set().union(*(_types(s, components) for s in schema[union]))
    kinds = schema.get("type")
    if kinds is None:
        return {ANY}
    kinds = [kinds] if isinstance(kinds, str) else kinds
    result = set()
    for kind in kinds:
        fmt = schema.get("format")
        result.add(f"{kind}:{fmt}" if fmt and kind == "string" else kind)
    return result


def _covers(wide: set[str], narrow: set[str]) -> set[str]:
    """What in ``narrow`` ``wide`` does not admit (empty: it admits all of it)."""
    if ANY in wide:
        return set()
    missing = set()
    for kind in narrow:
        base = kind.split(":")[0]
        if kind in wide:
            continue
        if base == "string" and "string" in wide:  # plain text admits any format
            continue
        if base == "object" and "object" in wide:
            continue  # a dict admits any object
        if kind == "object" and any(w.startswith("object") for w in wide):
            continue  # a dict sent as one of the API's objects: its shape is the caller's

        if kind == "integer" and "number" in wide:
            continue
        missing.add(kind)
    return missing


def _items(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any] | None:
    for option in [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]:
        if option.get("type") == "array":
            return option.get("items", {})
    return None


def compare(
    sdk: dict[str, Any],
    sdk_all: dict[str, Any],
    api: dict[str, Any],
    api_all: dict[str, Any],
    *,
    response: bool,
) -> list[str]:
    """Problems between one SDK Struct schema and its API component (empty: compatible)."""
    problems = []
    sdk_props, api_props = sdk.get("properties", {}), api.get("properties", {})
    sdk_required, api_required = set(sdk.get("required", [])), set(api.get("required", []))
    for name in sorted(set(sdk_props) - set(api_props)):
        problems.append(f"{name}: in the SDK, not in the API")
    for name in sorted(api_required - set(sdk_props)):
        problems.append(f"{name}: required by the API, missing in the SDK")
    if response:
        for name in sorted((sdk_required - api_required) & set(api_props)):
            problems.append(f"{name}: the SDK requires it, the API may leave it out")
    else:
        for name in sorted((api_required - sdk_required) & set(sdk_props)):
            problems.append(f"{name}: the API requires it, the SDK may leave it out")
    for name in sorted(set(sdk_props) & set(api_props)):
        pairs = [(sdk_props[name], api_props[name], name)]
        while pairs:
            s, a, path = pairs.pop()
            s_types, a_types = _types(s, sdk_all), _types(a, api_all)
            if response:
                gap = _covers(s_types, a_types)  # the SDK must decode whatever the API sends
            else:
                gap = _covers(a_types, s_types - {"null"})  # the API must take what the SDK sends
            if gap:
                problems.append(f"{path}: SDK {sorted(s_types)} vs API {sorted(a_types)}")
                continue
            s_items, a_items = _items(s, sdk_all), _items(a, api_all)
            if s_items is not None and a_items is not None:
                pairs.append((s_items, a_items, f"{path}[]"))
    return problems


def test_every_sdk_struct_has_its_api_component(openapi):
    names = [*RESPONSE_SCHEMAS.values(), *REQUEST_SCHEMAS.values()]
    assert [n for n in names if n not in openapi] == []


@pytest.mark.parametrize("struct", list(RESPONSE_SCHEMAS), ids=lambda s: s.__name__)
def test_response_structs_match_the_api(openapi, struct):
    components, names = sdk_components()
    sdk = components[names[struct]]
    api = openapi[RESPONSE_SCHEMAS[struct]]
    assert compare(sdk, components, api, openapi, response=True) == []


@pytest.mark.parametrize("struct", list(REQUEST_SCHEMAS), ids=lambda s: s.__name__)
def test_request_structs_match_the_api(openapi, struct):
    components, names = sdk_components()
    sdk = components[names[struct]]
    api = openapi[REQUEST_SCHEMAS[struct]]
    assert compare(sdk, components, api, openapi, response=False) == []


def test_the_checker_catches_drift(openapi):
    """A Struct that drifted in every way the checker knows is reported for each."""

    class Return(msgspec.Struct, kw_only=True):  # shadows the real one on purpose
        id: int  # the API sends a uuid string
        sale_id: uuid.UUID
        colour: str  # the API has no such field
        decided_at: str  # required here, nullable in the API

    (_, components) = msgspec.json.schema_components([Return], ref_template=REF + "{name}")
    problems = compare(components["Return"], components, openapi["Return"], openapi, response=True)
    text = "\n".join(problems)
    assert "colour: in the SDK, not in the API" in text
    assert "lead_id: required by the API, missing in the SDK" in text
    assert "id: SDK ['integer'] vs API ['string:uuid']" in text
    assert "decided_at: SDK" in text  # a null the SDK could not decode
