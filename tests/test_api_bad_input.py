"""Hostile input on every API endpoint, generated from the URL resolver and each endpoint's body schema.

Every query parameter an endpoint declares (in the OpenAPI document) gets the bad values listed for it
in tests/url_inventory.API_BAD_QUERIES (400 ``invalid_request``) and its good ones (200).

Every endpoint that takes a JSON body gets: nesting 1,000 deep, lone surrogates in values and keys,
each field of the wrong type, malformed JSON, NaN/Infinity, NUL (raw and ``\\u0000``), bodies over the
endpoint's and the server's limit, the wrong content type. Each answers a 4xx JSON error and changes
nothing, while the literal text ``%00`` in a valid body is accepted. No API URL answers a 5xx or HTML.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import Client
from jsonschema import Draft202012Validator

from agentops.escalations.models import Escalation
from runs.models import Run
from tenants.models import ApiScope, AuditEvent
from tests.url_inventory import (
    API_BAD_QUERIES,
    API_OBJECT_FACTORIES,
    API_QUERY_BASE,
    API_VALID_BODIES,
    API_VALID_QUERIES,
    api_routes,
)

pytestmark = pytest.mark.django_db

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_ROUTES = api_routes()
BODY_ROUTES = [r for r in API_ROUTES if BODY_METHODS & set(r.methods)]
DEEP = "[" * 1000 + "]" * 1000
WRONG_VALUES = [[], {}, None, 7, 1.5, True, "", "text"]


def test_there_are_json_endpoints():
    assert len(BODY_ROUTES) >= 5


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route)
def test_every_json_endpoint_declares_its_body(route):
    schema = route.operations["POST"].body
    assert schema is not None and schema.get("type") == "object" and schema.get("additionalProperties") is False
    assert route.name in API_VALID_BODIES, f"add a valid body for {route.name} to tests/url_inventory.API_VALID_BODIES"


@pytest.fixture
def api(tenant):  # type: ignore[no-untyped-def]
    from tenants.services import api_key_create

    tenant.tier.api_rate_limit_per_minute = 100_000
    tenant.tier.save()
    raw = api_key_create(tenant=tenant, actor=None, name="fuzz", scopes=list(ApiScope.values))[1]
    # raise_request_exception=False: a 500 is a status to assert on, not an exception in the test.
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {raw}")


def _url(route, tenant):  # type: ignore[no-untyped-def]
    return route.build(**{k: API_OBJECT_FACTORIES[k](tenant) for k in route.converters})


def _with(valid: dict, key: str, placeholder: str = "@@VALUE@@") -> str:
    """``valid`` as JSON text with ``key`` set to a placeholder the caller replaces with raw JSON."""
    return json.dumps({**valid, key: placeholder})


def _state() -> tuple:
    return (sorted(Run.objects.values_list("pk", "status")), sorted(Escalation.objects.values_list("pk", "status")),
            AuditEvent.objects.count())


def bad_bodies(route, valid: dict) -> list[tuple[str, bytes | str, int, str, str]]:  # type: ignore[no-untyped-def]
    """(case, raw body, status, error type, content type) for one endpoint, from its schema."""
    schema = route.operations["POST"].body or {}
    props = schema.get("properties", {})
    limit = route.operations["POST"].max_body_bytes
    json_ct = "application/json"
    cases: list[tuple[str, bytes | str, int, str, str]] = [
        ("deep-array", DEEP, 400, "invalid_json", json_ct),
        ("deep-object", '{"a":' * 1000 + "1" + "}" * 1000, 400, "invalid_json", json_ct),
        ("deep-in-body", _with(valid, "deep").replace('"@@VALUE@@"', DEEP), 400, "invalid_json", json_ct),
        ("surrogate-key", json.dumps({**valid, "k\ud800": "v"}), 400, "invalid_json", json_ct),
        ("surrogate-pair-split", json.dumps({**valid, "k": "\udc00\ud800"}), 400, "invalid_json", json_ct),
        ("not-an-object", "[1, 2]", 400, "invalid_json", json_ct),
        ("null", "null", 400, "invalid_json", json_ct),
        ("string", '"x"', 400, "invalid_json", json_ct),
        ("malformed", "{nope", 400, "invalid_json", json_ct),
        ("truncated", json.dumps(valid)[:-1] or "{", 400, "invalid_json", json_ct),
        ("single-quotes", "{'a': 1}", 400, "invalid_json", json_ct),
        ("nan", _with(valid, "n").replace('"@@VALUE@@"', "NaN"), 400, "invalid_json", json_ct),
        ("infinity", _with(valid, "n").replace('"@@VALUE@@"', "-Infinity"), 400, "invalid_json", json_ct),
        ("overflow", _with(valid, "n").replace('"@@VALUE@@"', "1e400"), 400, "invalid_json", json_ct),
        ("huge-int", _with(valid, "n").replace('"@@VALUE@@"', "9" * 5000), 400, "invalid_json", json_ct),
        ("not-utf8", b'{"a": "\xff\xfe"}', 400, "invalid_json", json_ct),
        ("raw-nul", json.dumps({**valid, "k": "a@@b"}).replace("@@", "\x00"), 400, "invalid_request", json_ct),
        ("escaped-nul", json.dumps({**valid, "k": "a\x00b"}), 400, "invalid_request", json_ct),
        ("unknown-field", json.dumps({**valid, "tenant": "globex"}), 400, "invalid_request", json_ct),
        ("over-endpoint-limit", json.dumps({**valid, "pad": "x" * limit}), 413,
         "request_too_large", json_ct),
        ("over-server-limit", json.dumps({**valid, "pad": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE}), 413,
         "request_too_large", json_ct),
        ("form-encoded", "agent=x&input=y", 415, "unsupported_media_type", "application/x-www-form-urlencoded"),
    ]
    for name, field_schema in props.items():
        checker = Draft202012Validator(field_schema)
        for wrong in WRONG_VALUES:
            if not checker.is_valid(wrong):
                cases.append((f"{name}={json.dumps(wrong)}", json.dumps({**valid, name: wrong}), 400, "invalid_request", json_ct))
        cases.append((f"{name}-surrogate", json.dumps({**valid, name: "a\ud800b"}), 400, "invalid_json", json_ct))
        cases.append((f"{name}-nul", json.dumps({**valid, name: "a\x00b"}), 400, "invalid_request", json_ct))
        cases.append((f"{name}-nested-surrogate-key", json.dumps({**valid, name: {"k\udfff": "v"}}), 400, "invalid_json", json_ct))
        cases.append((f"{name}-nested-surrogate-value", json.dumps({**valid, name: {"k": ["\ud800"]}}), 400, "invalid_json", json_ct))
        cases.append((f"{name}-deep", _with(valid, name).replace('"@@VALUE@@"', DEEP), 400, "invalid_json", json_ct))
    for name in schema.get("required", []):
        cases.append((f"missing-{name}", json.dumps({k: v for k, v in valid.items() if k != name}), 400, "invalid_request", json_ct))
    return cases


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route)
def test_bad_bodies_get_a_json_4xx_and_change_nothing(route, tenant, api):
    url = _url(route, tenant)
    valid = API_VALID_BODIES[route.name](tenant)
    before = _state()
    wrong = []
    for case, raw, status, type_, ctype in bad_bodies(route, valid):
        resp = api.post(url, data=raw, content_type=ctype)
        got = resp.json()["error"]["type"] if resp["Content-Type"].startswith("application/json") and resp.status_code >= 400 else None
        if (resp.status_code, got) != (status, type_):
            wrong.append((case, resp.status_code, got, resp.content[:120]))
    assert wrong == [], f"{route.route}: {len(wrong)} cases answered otherwise"
    assert _state() == before


@pytest.mark.parametrize("route", BODY_ROUTES, ids=lambda r: r.route)
def test_a_valid_body_passes_and_percent_00_is_text(route, tenant, api):
    """The door lets a valid body through; "%00" in it is three characters, not a NUL byte."""
    url = _url(route, tenant)
    raw = json.dumps(API_VALID_BODIES[route.name](tenant))
    resp = api.post(url, data=raw, content_type="application/json")
    assert resp.status_code < 500 and resp.status_code not in (400, 413, 415), (resp.status_code, resp.content[:200])
    if "%00" in raw:
        assert resp.status_code < 300 and "%00" in resp.content.decode(), resp.content[:200]


def test_percent_00_text_is_stored_as_written(tenant, api):
    body = API_VALID_BODIES["api_runs"](tenant)
    resp = api.post("/api/v1/runs", data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 201, resp.content
    run = Run.objects.get(pk=resp.json()["id"])
    assert run.input == "Refund 50%00 of order 7" and run.metadata == {"note": "50%00 off"}
    # An escaped backslash before u0000 is the text "\u0000", not a NUL either.
    resp = api.post("/api/v1/runs", data='{"agent": "iso-agent", "input": "C:\\\\u0000 dir"}', content_type="application/json")
    assert resp.status_code == 201, resp.content
    assert Run.objects.get(pk=resp.json()["id"]).input == "C:\\u0000 dir"


def test_decide_with_wrong_types_is_400_not_a_type_error(tenant, api):
    esc = Escalation.objects.get(pk=API_OBJECT_FACTORIES["escalation_id"](tenant))
    for body in ({"decision": []}, {}, {"decision": {}}, {"decision": None}, {"decision": "reject", "comment": None}):
        resp = api.post(f"/api/v1/escalations/{esc.pk}/decide", data=json.dumps(body), content_type="application/json")
        assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request", (body, resp.content)
    assert "decision" in resp.json()["error"]["message"] or "comment" in resp.json()["error"]["message"]
    esc.refresh_from_db()
    assert esc.status == "pending"


# --- every API URL, any method: JSON errors, never a 5xx -----------------------------------

JUNK_IDS = ["abc", "-1", "0", "9" * 30, "1.5", "%F0%9F", "%ED%A0%80", "é"]


@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.route)
def test_junk_ids_queries_and_methods_never_5xx(route, tenant, api):
    idents = JUNK_IDS if route.converters else [""]
    wrong = []
    for ident in idents:
        url = route.build(**dict.fromkeys(route.converters, ident))
        for method in ("get", "post", "put", "patch", "delete"):
            body = {} if method == "get" else {"data": "{}", "content_type": "application/json"}
            resp = getattr(api, method)(url + "?limit=%ED%A0%80&status=x&start=9999-99-99&after=-1&follow=0", **body)
            is_json = resp["Content-Type"].startswith(("application/json", "text/event-stream"))
            if resp.status_code >= 500 or not is_json or (resp.status_code >= 400 and "error" not in resp.json()):
                wrong.append((method, url, resp.status_code, resp["Content-Type"]))
    assert wrong == []


@pytest.mark.parametrize("path", ["/api/", "/api/v1/", "/api/v1/nope", "/api/v2/runs", "/api/v1/runs/1/nope",
                                  "/api/v1/runs/1/events/x", "/api/v1/escalations/1/decide/"])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_paths_are_json_404(path, method, api):
    resp = getattr(api, method)(path)
    assert resp.status_code == 404 and resp["Content-Type"] == "application/json"
    assert resp.json()["error"]["type"] == "not_found"


def test_unknown_api_paths_are_json_404_in_debug_too(api, settings):
    settings.DEBUG = True
    resp = api.get("/api/v1/nope")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found"


def test_an_unexpected_error_under_api_is_json_500(rf):
    from django.http import HttpResponseNotAllowed, HttpResponseServerError

    from agentops.middleware import ApiJsonErrorsMiddleware

    resp = ApiJsonErrorsMiddleware(lambda request: HttpResponseServerError("<h1>Server Error (500)</h1>"))(rf.get("/api/v1/runs"))
    assert resp.status_code == 500 and json.loads(resp.content) == {"error": {"type": "api_error", "message": "Internal Server Error."}}
    resp = ApiJsonErrorsMiddleware(lambda request: HttpResponseNotAllowed(["GET"]))(rf.put("/api/v1/spend"))
    assert resp.status_code == 405 and resp["Allow"] == "GET" and json.loads(resp.content)["error"]["type"] == "method_not_allowed"
    # The console keeps its HTML pages.
    resp = ApiJsonErrorsMiddleware(lambda request: HttpResponseServerError("<h1>x</h1>"))(rf.get("/t/acme/"))
    assert resp.content == b"<h1>x</h1>"


def test_an_oversized_body_is_typed_request_too_large(tenant, api):
    resp = api.post("/api/v1/runs", data="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1), content_type="application/json")
    assert resp.status_code == 413 and resp.json()["error"]["type"] == "request_too_large"


QUERY_ROUTES = [r for r in API_ROUTES if "GET" in r.operations and r.operations["GET"].query]


def test_there_are_endpoints_with_query_parameters():
    assert {"api_runs", "api_runs_messages", "api_spend"} <= {r.name for r in QUERY_ROUTES}


@pytest.mark.parametrize("route", QUERY_ROUTES, ids=lambda r: r.route)
def test_every_query_parameter_has_good_and_bad_values_listed(route):
    declared = set(route.operations["GET"].query)
    assert set(API_VALID_QUERIES.get(route.name, {})) == declared, f"list good values for {route.name} in API_VALID_QUERIES"
    assert set(API_BAD_QUERIES.get(route.name, {})) == declared, f"list bad values for {route.name} in API_BAD_QUERIES"


@pytest.mark.parametrize("route", QUERY_ROUTES, ids=lambda r: r.route)
def test_bad_query_values_get_a_json_400(route, tenant, api):
    url = _url(route, tenant)
    base = API_QUERY_BASE.get(route.name, {})
    wrong = []
    for param, values in API_BAD_QUERIES[route.name].items():
        for value in values:
            resp = api.get(url, {**base, param: value})
            ok = resp.status_code == 400 and resp["Content-Type"] == "application/json" and resp.json()["error"]["type"] == "invalid_request"
            if not ok:
                wrong.append((param, value[:40], resp.status_code, resp.content[:120]))
    assert wrong == []


@pytest.mark.parametrize("route", QUERY_ROUTES, ids=lambda r: r.route)
def test_good_query_values_answer_200(route, tenant, api):
    url = _url(route, tenant)
    base = API_QUERY_BASE.get(route.name, {})
    wrong = []
    for param, values in API_VALID_QUERIES[route.name].items():
        for value in values:
            resp = api.get(url, {**base, param: value})
            if resp.status_code != 200:
                wrong.append((param, value, resp.status_code, resp.content[:120]))
    assert wrong == []
