"""The OpenAPI document (/api/v1/openapi.json) is valid OpenAPI 3.1, names every API endpoint, and
every endpoint's live answers — success and error — match it.

The calls are generated like the isolation tests: every /api/ route from the URL resolver, each of
its methods, with objects from tests/url_inventory (a new endpoint is covered without listing it).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import resolve
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from runs.models import Message, Run, RunEvent
from tenants.services import api_key_create
from tests.url_inventory import (
    API_BAD_QUERIES,
    API_OBJECT_FACTORIES,
    API_QUERY_BASE,
    API_VALID_BODIES,
    API_VALID_QUERIES,
    api_routes,
)

pytestmark = pytest.mark.django_db
API_ROUTES = api_routes()


@pytest.fixture
def doc(client):  # type: ignore[no-untyped-def]
    resp = client.get("/api/v1/openapi.json")  # no key: the document is public
    assert resp.status_code == 200 and resp["Content-Type"] == "application/json"
    return resp.json()


def _doc_path(url: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", resolve(urlsplit(url).path).route)


class Checker:
    """Validates answers against the document; remembers what it saw per operation."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.seen: dict[tuple[str, str], set[int]] = {}
        self.wrong: list[tuple[str, str, int, str]] = []

    def __call__(self, method: str, url: str, resp: Any) -> None:
        path = _doc_path(url)
        op = self.doc["paths"][path][method.lower()]
        self.seen.setdefault((method, path), set()).add(resp.status_code)
        status = str(resp.status_code)
        pointer_status = status if status in op["responses"] else "default"
        if pointer_status == "default" and resp.status_code < 400:
            self.wrong.append((method, url, resp.status_code, "an undocumented success status"))
            return
        media = resp["Content-Type"].split(";")[0]
        content = op["responses"][pointer_status]["content"]
        if media not in content:
            self.wrong.append((method, url, resp.status_code, f"undocumented content type {media}"))
            return
        if media == "text/event-stream":
            text = b"".join(resp.streaming_content).decode()
            if not text.startswith("retry:") or "event: end" not in text:
                self.wrong.append((method, url, resp.status_code, "not an event stream"))
            return
        escaped = path.replace("~", "~0").replace("/", "~1")
        pointer = f"#/paths/{escaped}/{method.lower()}/responses/{pointer_status}/content/{media.replace('/', '~1')}/schema"
        validator = Draft202012Validator({**self.doc, "$ref": pointer}, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message[:150]}" for e in validator.iter_errors(resp.json())]
        if errors:
            self.wrong.append((method, url, resp.status_code, "; ".join(errors[:3])))


def test_the_document_is_valid_openapi_3_1(doc):
    validate(doc)  # openapi-spec-validator: raises on any violation
    assert doc["openapi"].startswith("3.1")


def test_every_api_endpoint_and_method_is_in_the_document(doc):
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    routes = {(_doc_path(r.build(**dict.fromkeys(r.converters, "1"))), m.lower()) for r in API_ROUTES for m in r.methods}
    assert routes == documented and all(r.methods for r in API_ROUTES)
    assert ("/api/v1/runs", "get") in documented and ("/api/v1/runs/{run_id}/messages", "get") in documented
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert op["security"] and any(s.startswith("2") for s in op["responses"]), (path, method)
            if method == "post":
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                if "$ref" in schema:
                    schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                assert schema["type"] == "object" and schema["additionalProperties"] is False, path
    # The shapes clients build types from are named once.
    assert {"Run", "RunPage", "Message", "MessagePage", "Escalation", "Spend", "RunSubmit", "Error"} <= set(doc["components"]["schemas"])


def test_every_route_answers_exactly_its_documented_methods(client):
    """The document is read from ninja's operations; the URLs must agree: any other method is 405."""
    for route in API_ROUTES:
        url = route.build(**dict.fromkeys(route.converters, "1"))
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            resp = getattr(client, method.lower())(url)  # no key: a documented method answers 401
            if method in route.methods:
                assert resp.status_code == 401, (method, url, resp.status_code)
            else:
                assert resp.status_code == 405 and set(resp["Allow"].split(", ")) == set(route.methods), (method, url)
                assert resp.json()["error"]["type"] == "method_not_allowed"


def test_every_endpoint_answers_as_documented(doc, tenant, other_tenant):
    tenant.tier.api_rate_limit_per_minute = 100_000
    tenant.tier.save()
    full = api_key_create(tenant=tenant, actor=None, name="schema", scopes=["runs", "escalations", "spend"])[1]
    others = api_key_create(tenant=other_tenant, actor=None, name="schema", scopes=["runs", "escalations", "spend"])[1]
    client = Client(raise_request_exception=False)
    check = Checker(doc)

    def call(method, url, key, body=None, query=None):  # type: ignore[no-untyped-def]
        headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
        if method == "POST":
            resp = client.post(url, data=body if isinstance(body, str) else json.dumps(body or {}),
                               content_type="application/json", **headers)
        else:
            resp = client.get(url, query or {}, **headers)
        check(method, url, resp)
        return resp

    for route in API_ROUTES:
        for method in route.methods:
            ids = {k: API_OBJECT_FACTORIES[k](tenant) for k in route.converters}
            if "run_id" in ids:  # something in the log, the events and the result to show
                run = Run.objects.get(pk=ids["run_id"])
                Message.objects.create(tenant=tenant, run=run, seq=1, role="user", content="Hi, I am ann@example.com")
                Message.objects.create(tenant=tenant, run=run, seq=2, role="assistant", content=[{"type": "text", "text": "Hello"}],
                                       model="claude-sonnet-4-6", stop_reason="end_turn", usage={"input_tokens": 3, "output_tokens": 1})
                RunEvent.objects.create(tenant=tenant, run=run, type="status", data={"status": "queued"})
            url = route.build(**ids)
            base = API_QUERY_BASE.get(route.name, {})
            body = API_VALID_BODIES[route.name](tenant) if method == "POST" else None
            if route.name == "api_runs_resume":  # resumable: paused first
                call("POST", url.replace("/resume", "/pause"), full, {})
            # Success, then the errors every endpoint has.
            call(method, url, full, body, base)
            call(method, url, None, body, base)
            call(method, url, "aok_deadbeef_notarealkey000000", body, base)
            wrong_scope = api_key_create(tenant=tenant, actor=None, name="scope", scopes=[
                s for s in ("runs", "escalations", "spend") if s != route.scope])[1]
            call(method, url, wrong_scope, body, base)
            if ids:
                call(method, url, others, API_VALID_BODIES[route.name](other_tenant) if method == "POST" else None, base)
            if method == "GET":
                for param, values in API_VALID_QUERIES.get(route.name, {}).items():
                    for value in values[:2]:
                        call("GET", url, full, query={**base, param: value})
                for param, values in API_BAD_QUERIES.get(route.name, {}).items():
                    for value in values[:2]:
                        call("GET", url, full, query={**base, param: value})
            else:
                call("POST", url, full, "{nope")
                call("POST", url, full, {**(body or {}), "unknown_field": 1})
                call("POST", url, full, "x" * (route.operations["POST"].max_body_bytes + 1))
    # A page with a cursor, a rate-limited answer.
    first = call("GET", "/api/v1/runs", full, query={"limit": "1"}).json()
    assert first["next_cursor"]
    call("GET", "/api/v1/runs", full, query={"limit": "1", "cursor": first["next_cursor"]})
    tenant.tier.api_rate_limit_per_minute = 0
    tenant.tier.save()
    assert call("GET", "/api/v1/spend", full).status_code == 429

    assert check.wrong == [], check.wrong[:10]
    for (method, path), statuses in check.seen.items():
        assert any(200 <= s < 300 for s in statuses), (method, path, statuses)  # every operation answered a success
        assert {401, 403} <= statuses, (method, path, statuses)
    assert len(check.seen) == sum(len(r.methods) for r in API_ROUTES)


def test_the_docs_page_lists_every_operation_under_the_csp(client, doc):
    resp = client.get("/api/v1/docs")
    assert resp.status_code == 200
    html = resp.content.decode()
    for path, item in doc["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in html
    assert "/api/v1/openapi.json" in html
    policy = resp["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "<script>" not in html and "cdn" not in html.lower()
