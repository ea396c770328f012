"""The SDK against the exchange's own OpenAPI document (``/schema/openapi.json``).

Fails when the two drift apart:
- a Struct: a field on one side only, a field required on one side and optional on the other, a
  type the SDK cannot decode (answers) or the API would not take (requests), an enumeration
  whose values differ (tags of unions included), a nested Struct left unchecked;
- a route: a client method whose path or HTTP method the API does not have, whose answer or
  body is not the API's component, or a route a buyer key may call that the SDK leaves out.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.handlers import HTTPRouteHandler
from litestar.testing import TestClient

from buyers_sdk import AsyncExchangeClient, ExchangeClient
from buyers_sdk.client import ROUTES
from buyers_sdk.models import ENUMS, REQUEST_SCHEMAS, RESPONSE_SCHEMAS
from exchange.app import create_app
from exchange.auth.parties import PartyKind
from exchange.settings import load_settings
from tests.conftest import TEST_SECRET

REF = "#/components/schemas/"
ANY = "any"
# Routes a buyer key may call that the SDK leaves out on purpose: the API's own documents and
# the health check, not part of a buyer's work.
NOT_FOR_THE_SDK = {
    ("GET", "/health"),
    ("GET", "/schema"),
    ("GET", "/schema/oauth2-redirect.html"),
    ("GET", "/schema/openapi.json"),
    ("GET", "/schema/redoc"),
    ("GET", "/schema/swagger"),
    ("GET", "/schema/{path}"),
    # The signed postback takes no key: a buyer's CRM calls a URL ``buyers_sdk.postback_url``
    # builds (tests/sdk/test_postback.py checks the two sign alike).
    ("GET", "/v1/postbacks/outcome"),
    ("POST", "/v1/postbacks/outcome"),
    # Intake adapters take no key (a source's URL token, and the platforms' shared key or
    # signature): browsers, Google Ads, Meta and mail providers call them (docs/channels.md).
    ("POST", "/v1/forms/{token}"),
    ("POST", "/v1/webhooks/google-ads/{token}"),
    ("GET", "/v1/webhooks/meta/{token}"),
    ("POST", "/v1/webhooks/meta/{token}"),
    ("POST", "/v1/inbound-email/{token}"),
}


@pytest.fixture(scope="module")
def app(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("contract")
    shutil.copy(sqlite_template, tmp / "exchange.db")
    settings = load_settings(
        env={},
        database_url=f"sqlite:///{tmp / 'exchange.db'}",
        secret_key=TEST_SECRET,
        var_dir=str(tmp / "var"),
    )
    return create_app(settings, in_process_worker=False)


@pytest.fixture(scope="module")
def document(app) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def openapi(document) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return document["components"]["schemas"]


def sdk_components() -> tuple[dict[str, Any], dict[Any, str]]:
    """The SDK's JSON schema components, and each registered type's component name."""
    types = list(dict.fromkeys([*RESPONSE_SCHEMAS, *REQUEST_SCHEMAS]))
    refs, components = msgspec.json.schema_components(types, ref_template=REF + "{name}")
    return components, {t: ref["$ref"].removeprefix(REF) for t, ref in zip(types, refs)}


def _union(schema: dict[str, Any]) -> list[dict[str, Any]] | None:
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return schema[key]
    return None


def _types(schema: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """The JSON types a schema admits, as ``type`` or ``type:format`` / ``object:<Component>``."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        target = components[name]
        if "enum" in target or target.get("type") in ("string", "integer"):
            return {target.get("type", "string")}
        if _union(target) is not None:
            return _types(target, components)
        return {f"object:{name}"}
    options = _union(schema)
    if options is not None:
        found = [_types(s, components) for s in options]
        known = [f for f in found if f != {ANY}]  # Litestar adds a bare {} to some item unions
        return set().union(*(known or found))
    kinds = schema.get("type")
    if kinds is None:
        values = schema.get("enum", [schema["const"]] if "const" in schema else None)
        if values and all(isinstance(v, str) for v in values):
            return {"string"}
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
        if kind == "integer" and "number" in wide:
            continue
        missing.add(kind)
    return missing


def _enum(schema: dict[str, Any], components: dict[str, Any]) -> tuple[str | None, set] | None:
    """(component name or None, values) when the schema is an enumeration (or a nullable one)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        target = components[name]
        if "enum" in target:
            return name, set(target["enum"])
        return None
    if "enum" in schema:
        return None, set(schema["enum"])
    if "const" in schema:
        return None, {schema["const"]}
    options = [s for s in _union(schema) or [] if s.get("type") != "null"]
    if len(options) == 1:
        return _enum(options[0], components)
    return None


def _nested(schema: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of array items (``items``) or object values (``additionalProperties``)."""
    kind = "array" if key == "items" else "object"
    for option in [schema, *(_union(schema) or [])]:
        if option.get("type") == kind and isinstance(option.get(key), dict):
            return option[key]
    return None


def _enum_problems(
    component: str,
    name: str,
    sdk: dict[str, Any],
    sdk_all: dict,
    api: dict[str, Any],
    api_all: dict,
) -> list[str]:
    api_enum, sdk_enum = _enum(api, api_all), _enum(sdk, sdk_all)
    if api_enum is None:
        return [f"{name}: an enumeration in the SDK, not in the API"] if sdk_enum else []
    ref, api_values = api_enum
    if sdk_enum is not None:
        sdk_values, key = sdk_enum[1], "the SDK's type"
    else:  # a plain string in the SDK: the values it knows are in ENUMS
        key = ref or f"{component}.{name}"
        if key not in ENUMS:
            return [f"{name}: the API's enumeration {key} is not in the SDK's ENUMS"]
        sdk_values = set(ENUMS[key])
    if sdk_values != api_values:
        return [
            f"{name}: enumeration {key}: SDK only {sorted(sdk_values - api_values)}, "
            f"API only {sorted(api_values - sdk_values)}"
        ]
    return []


def compare(
    component: str,
    sdk: dict[str, Any],
    sdk_all: dict[str, Any],
    api: dict[str, Any],
    api_all: dict[str, Any],
    *,
    response: bool,
) -> list[str]:
    """Problems between one SDK Struct schema and its API component (empty: they agree)."""
    problems = []
    sdk_props, api_props = sdk.get("properties", {}), api.get("properties", {})
    sdk_required, api_required = set(sdk.get("required", [])), set(api.get("required", []))
    for name in sorted(set(sdk_props) - set(api_props)):
        problems.append(f"{name}: in the SDK, not in the API")
    for name in sorted(set(api_props) - set(sdk_props)):
        if name in api_required:
            problems.append(f"{name}: required by the API, missing in the SDK")
        else:
            problems.append(f"{name}: in the API, missing in the SDK")
    for name in sorted((sdk_required - api_required) & set(api_props)):
        problems.append(f"{name}: the SDK requires it, the API may leave it out")
    for name in sorted((api_required - sdk_required) & set(sdk_props)):
        problems.append(f"{name}: the API requires it, the SDK may leave it out")
    for name in sorted(set(sdk_props) & set(api_props)):
        problems += _enum_problems(
            component, name, sdk_props[name], sdk_all, api_props[name], api_all
        )
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
            for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
                s_inner, a_inner = _nested(s, key), _nested(a, key)
                if s_inner is not None and a_inner is not None:
                    pairs.append((s_inner, a_inner, path + suffix))
    return problems


# --- Structs ----------------------------------------------------------------------------------


def test_every_sdk_struct_has_its_api_component(openapi):
    names = [*RESPONSE_SCHEMAS.values(), *REQUEST_SCHEMAS.values()]
    assert [n for n in names if n not in openapi] == []


def test_every_nested_struct_is_checked_too():
    """A Struct reachable from a registered one is registered itself (so it is compared)."""
    components, names = sdk_components()
    assert sorted(set(components) - set(names.values())) == []


def test_every_sdk_enumeration_is_the_apis(openapi):
    for key in ENUMS:
        component, _, field = key.partition(".")
        assert component in openapi, key
        if field:
            assert "enum" in openapi[component]["properties"][field], key
        else:
            assert "enum" in openapi[component], key


@pytest.mark.parametrize("kind", list(RESPONSE_SCHEMAS), ids=lambda t: RESPONSE_SCHEMAS[t])
def test_response_types_match_the_api(openapi, kind):
    components, names = sdk_components()
    api_name = RESPONSE_SCHEMAS[kind]
    sdk = components[names[kind]]
    assert compare(api_name, sdk, components, openapi[api_name], openapi, response=True) == []


@pytest.mark.parametrize("kind", list(REQUEST_SCHEMAS), ids=lambda t: REQUEST_SCHEMAS[t])
def test_request_types_match_the_api(openapi, kind):
    components, names = sdk_components()
    api_name = REQUEST_SCHEMAS[kind]
    sdk = components[names[kind]]
    assert compare(api_name, sdk, components, openapi[api_name], openapi, response=False) == []


# --- routes -----------------------------------------------------------------------------------


def _openapi_path(litestar_path: str) -> str:
    return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", litestar_path)


def _admits_buyers(handler: HTTPRouteHandler) -> bool:
    """Whether a buyer key passes the handler's guards (``exchange.auth.middleware.allow``)."""
    for guard in handler.resolve_guards():
        fn = getattr(guard, "func", guard)
        cells = [c.cell_contents for c in getattr(fn, "__closure__", None) or ()]
        kinds = [c for c in cells if isinstance(c, frozenset)]
        assert kinds, f"a guard this test cannot read on {handler}: {fn}"
        if PartyKind.BUYER not in kinds[0]:
            return False
    return True


def buyer_routes(app) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue  # not part of the documented API (e.g. /metrics, for the scraper)
            if _admits_buyers(handler):
                for method in handler.http_methods - {"HEAD", "OPTIONS"}:
                    found.add((method, _openapi_path(route.path)))
    return found


def test_the_sdk_covers_every_route_a_buyer_key_may_call(app):
    covered = {(r.method, r.path) for r in ROUTES.values()}
    assert sorted(buyer_routes(app) - covered - NOT_FOR_THE_SDK) == []
    assert sorted(covered - buyer_routes(app)) == []  # nothing a buyer key cannot call


@pytest.mark.parametrize("name", list(ROUTES))
def test_each_client_method_is_an_api_route(document, name):
    route = ROUTES[name]
    assert callable(getattr(ExchangeClient, name)) and callable(getattr(AsyncExchangeClient, name))
    operation = document["paths"].get(route.path, {}).get(route.method.lower())
    assert operation is not None, f"{route.method} {route.path} is not in the API"

    answers = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
    assert len(answers) == 1, answers
    content = next(iter(answers.values()))["content"]
    if route.answer is str:
        assert [t for t in content if t.startswith("text/")], content
    else:
        schema = content["application/json"]["schema"]
        answer = route.answer
        if getattr(answer, "__origin__", None) is list:
            assert schema.get("type") == "array", schema
            schema, answer = schema["items"], answer.__args__[0]
        assert schema.get("$ref") == REF + RESPONSE_SCHEMAS[answer], schema

    body = operation.get("requestBody")
    if route.body is None:
        assert body is None, f"{route.method} {route.path} takes a body the SDK does not send"
    else:
        schema = body["content"]["application/json"]["schema"]
        assert schema.get("$ref") == REF + REQUEST_SCHEMAS[route.body], schema


# --- the checker itself -------------------------------------------------------------------------


def test_the_checker_catches_drift(openapi):
    """A Struct that drifted in every way the checker knows is reported for each."""

    class Return(msgspec.Struct, kw_only=True):  # shadows the real one on purpose
        id: int  # the API sends a uuid string
        sale_id: uuid.UUID
        colour: str  # the API has no such field
        decided_at: str  # required here, nullable in the API
        status: str  # a plain string whose values are ENUMS["ReturnStatus"]
        note: str | None = None  # optional here, required in the API

    (_, components) = msgspec.json.schema_components([Return], ref_template=REF + "{name}")
    problems = compare(
        "Return", components["Return"], components, openapi["Return"], openapi, response=True
    )
    text = "\n".join(problems)
    assert "colour: in the SDK, not in the API" in text
    assert "lead_id: required by the API, missing in the SDK" in text
    assert "id: SDK ['integer'] vs API ['string:uuid']" in text
    assert "decided_at: SDK" in text  # a null the SDK could not decode
    assert "note: the API requires it, the SDK may leave it out" in text
    assert "status:" not in text  # the SDK's ENUMS list the API's values


def test_the_checker_catches_enum_and_tag_drift(openapi):
    class Cap(msgspec.Struct, kw_only=True, tag_field="kind", tag="cap"):
        window: str
        max_count: int | None = None
        max_spend_minor: int | None = None

    class StatesIn(msgspec.Struct, kw_only=True, tag_field="kind", tag="state_in"):
        field: str
        states: list[str]

    (_, components) = msgspec.json.schema_components([Cap, StatesIn], ref_template=REF + "{name}")
    cap = compare("Cap", components["Cap"], components, openapi["Cap"], openapi, response=True)
    assert cap == ["kind: in the SDK, not in the API"]
    states = compare(
        "StatesIn", components["StatesIn"], components, openapi["StatesIn"], openapi, response=True
    )
    assert states == [
        "kind: enumeration the SDK's type: SDK only ['state_in'], API only ['states_in']"
    ]

    drifted = {**openapi, "CapWindow": {"type": "string", "enum": ["hour", "day", "year"]}}
    (_, real) = msgspec.json.schema_components(list(RESPONSE_SCHEMAS), ref_template=REF + "{name}")
    problems = compare("Cap", real["Cap"], real, drifted["Cap"], drifted, response=True)
    assert problems == [
        "window: enumeration CapWindow: SDK only ['concurrent', 'month', 'week'], API only ['year']"
    ]


# --- the error body -----------------------------------------------------------------------------


def test_the_error_body_is_the_apis():
    """Every error answer's body: the SDK's ``ErrorResponse`` against the exchange's own Struct
    (the OpenAPI document has no component for it), both ways, ``request_id`` included."""
    from buyers_sdk.models import ErrorResponse
    from exchange.errors import ErrorResponse as ApiErrorResponse

    (_, api) = msgspec.json.schema_components([ApiErrorResponse], ref_template=REF + "{name}")
    (_, sdk) = msgspec.json.schema_components([ErrorResponse], ref_template=REF + "{name}")
    assert sorted(sdk) == sorted(api) == ["ErrorBody", "ErrorResponse", "FieldProblem"]
    for name in sorted(api):
        assert compare(name, sdk[name], sdk, api[name], api, response=True) == [], name
    assert "request_id" in sdk["ErrorBody"]["properties"]
