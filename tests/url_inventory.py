"""Walks the URL resolver so the isolation tests cover every URL without anyone listing it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# Routes outside /t/<slug>/ and /api/ that are deliberately not tenant-scoped.
UNSCOPED_ALLOWED = {
    "", "login/", "logout/", "healthz", "readyz",
    # Accepting an invitation: the person is not a member yet, so the tenant cannot be in the URL;
    # the link's single-use, expiring token is the credential (tests/tenants/test_invitations.py).
    "invite/<str:token>/", "invite/accept/",
}
UNSCOPED_PREFIXES = ("admin/", "django-rq/", "staff/")
# Under /api/ but public, without a key: the OpenAPI document and its docs page (agentops/api.py),
# and ninja's root, which always answers 404 (it is there for ninja to reverse the API's prefix).
API_PUBLIC = {"api/v1/openapi.json", "api/v1/docs", "api/v1/"}


@dataclass
class Route:
    route: str
    name: str | None
    callback: Any
    converters: dict[str, str]
    # API routes only, from the OpenAPI document: each method's operation (scope, body, query).
    operations: dict[str, ApiOperation] = field(default_factory=dict)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.operations)

    @property
    def scope(self) -> str:
        (scope,) = {op.scope for op in self.operations.values()}
        return scope

    def build(self, **values: Any) -> str:
        path = self.route
        for key in self.converters:
            path = re.sub(rf"<(?:\w+:)?{key}>", str(values[key]), path)
        return "/" + path


def _walk(patterns: list[Any], prefix: str = "") -> list[Route]:
    routes: list[Route] = []
    for p in patterns:
        if isinstance(p, URLResolver):
            routes.extend(_walk(p.url_patterns, prefix + str(p.pattern)))
        elif isinstance(p, URLPattern):
            route = prefix + str(p.pattern)
            converters = {m.group(2): m.group(1) or "str" for m in re.finditer(r"<(?:(\w+):)?(\w+)>", route)}
            routes.append(Route(route=route, name=p.name, callback=p.callback, converters=converters))
    return routes


def all_routes() -> list[Route]:
    return _walk(get_resolver().url_patterns)


def tenant_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("t/<slug:slug>/")]


@dataclass
class ApiOperation:
    scope: str
    body: dict[str, Any] | None  # the request body's JSON Schema, $refs resolved
    max_body_bytes: int | None
    query: dict[str, dict[str, Any]]  # query parameter -> its schema


def api_document() -> dict[str, Any]:
    from agentops.api import api

    return json.loads(json.dumps(api.get_openapi_schema()))


def doc_path(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def deref(schema: Any, doc: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` to ``#/components/schemas/…`` replaced by what it names."""
    if isinstance(schema, list):
        return [deref(item, doc) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return deref({**target, **{k: v for k, v in schema.items() if k != "$ref"}}, doc)
    return {k: deref(v, doc) for k, v in schema.items()}


def api_routes() -> list[Route]:
    """Every API route once (ninja yields a pattern per method), with its operations from the document.

    A route missing from the document has no operations, and fails tests/test_isolation.py."""
    doc = api_document()
    routes: dict[str, Route] = {}
    for r in all_routes():
        if not r.route.startswith("api/") or r.route in API_PUBLIC or r.route in routes:
            continue
        for method, op in doc["paths"].get(doc_path(r.route), {}).items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            r.operations[method.upper()] = ApiOperation(
                scope=op["security"][0]["ApiKey"][0],
                body=deref(body, doc) if body else None,
                max_body_bytes=op.get("x-max-body-bytes"),
                query={p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"},
            )
        routes[r.route] = r
    return list(routes.values())


def escaping_routes() -> list[str]:
    """Routes that are neither tenant-scoped, API, nor on the explicit public list."""
    bad = []
    for r in all_routes():
        if r.route.startswith(("t/<slug:slug>/", "api/")) or r.route in UNSCOPED_ALLOWED | API_PUBLIC:
            continue
        if r.route.startswith(UNSCOPED_PREFIXES) or r.route.startswith("^"):
            continue
        bad.append(r.route)
    return bad


# --- per API URL: how to make its objects and a valid body ---------------------------------
# A new API URL with an unknown kwarg, or a new endpoint that takes a body, fails the isolation
# and bad-input tests until an entry is added here: no URL goes unchecked.

def _make_run(tenant):  # type: ignore[no-untyped-def]
    from runs.models import Agent, Run

    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="iso-agent", defaults={"system_prompt": "x"})
    return Run.objects.create(tenant=tenant, agent=agent, input="x").pk


def _make_escalation(tenant):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from agentops.escalations.models import Escalation

    now = timezone.now()
    return Escalation.objects.create(
        tenant=tenant, run_id=_make_run(tenant), kind="tool_call", tool_use_id="toolu_iso", tool_name="send_email",
        arguments={}, arguments_sha256="0" * 64, gate_reason="iso", sla_due_at=now, expires_at=now + timedelta(hours=1),
    ).pk


def _make_eval_suite(tenant):  # type: ignore[no-untyped-def]
    from agentops.evals.models import EvalCase, EvalSuite
    from agentops.prompts.models import Prompt, PromptLabel, PromptVersion
    from runs.models import Agent

    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="iso-agent", defaults={"system_prompt": "x"})
    prompt, created = Prompt.objects.get_or_create(tenant=tenant, name="iso-prompt")
    if created:
        version = PromptVersion.objects.create(tenant=tenant, prompt=prompt, number=1, system="x", model="claude-sonnet-4-6")
        PromptLabel.objects.create(tenant=tenant, prompt=prompt, name="production", version=version)
    suite, _ = EvalSuite.objects.get_or_create(tenant=tenant, name="iso-suite", defaults={"prompt": prompt, "agent": agent})
    EvalCase.objects.get_or_create(tenant=tenant, suite=suite, name="iso-case", defaults={"input": "hello"})
    return suite


def _make_eval_run(tenant):  # type: ignore[no-untyped-def]
    from agentops.evals.models import EvalRun

    suite = _make_eval_suite(tenant)
    return EvalRun.objects.create(tenant=tenant, suite=suite, prompt_version=suite.prompt.versions.get(number=1), total=1).pk


def _make_prompt(tenant):  # type: ignore[no-untyped-def]
    """A prompt with v1 on staging (free to move) and a v2 to move it to."""
    from agentops.prompts import services
    from agentops.prompts.models import Prompt

    prompt = Prompt.objects.for_tenant(tenant).filter(name="iso-prompt").first()
    if prompt is None:
        prompt = services.prompt_create(tenant=tenant, actor=None, name="iso-prompt")
        v1, _ = (services.version_create(tenant=tenant, actor=None, prompt=prompt, data={"system": t, "model": "claude-haiku-4-5"})
                 for t in ("x", "y"))
        # Set directly: what a fetch by label reads is under test here, not the gate (tests/prompts).
        prompt.labels.filter(name__in=["production", "staging"]).update(version=v1)
    return prompt.name


API_OBJECT_FACTORIES = {
    "run_id": _make_run,
    "escalation_id": _make_escalation,
    "eval_run_id": _make_eval_run,
    "prompt_name": _make_prompt,
    "label": lambda tenant: _make_prompt(tenant) and "staging",
}


def _run_submit_body(tenant):  # type: ignore[no-untyped-def]
    from runs.models import Agent

    Agent.objects.get_or_create(tenant=tenant, name="iso-agent", defaults={"system_prompt": "x"})
    # "%00" is text in JSON, not a NUL byte: a valid body carries it to prove it is accepted.
    return {"agent": "iso-agent", "input": "Refund 50%00 of order 7", "metadata": {"note": "50%00 off"}}


# Keyed by URL name: a body each endpoint accepts (given objects from API_OBJECT_FACTORIES).
API_VALID_BODIES = {
    "api_runs": _run_submit_body,
    "api_runs_cancel": lambda tenant: {},
    "api_runs_pause": lambda tenant: {},
    "api_runs_resume": lambda tenant: {},
    "api_escalations_decide": lambda tenant: {"decision": "reject", "comment": "No: 50%00 is too much."},
    "api_eval_runs": lambda tenant: {"suite": _make_eval_suite(tenant).name, "label": "production"},
    "api_prompts_versions": lambda tenant: {"system": "Answer in 50%00 fewer words.", "model": "claude-haiku-4-5", "changelog": "iso"},
    "api_prompts_label": lambda tenant: {"version": 2, "reason": "iso"},
    "api_memory_erase": lambda tenant: {"subject": "iso-subject"},
}


# Keyed by URL name, for every endpoint that declares query parameters (in the document):
# values each parameter accepts, and values it must refuse with 400 invalid_request. A parameter
# declared without an entry here fails tests/test_api_bad_input.py.
API_VALID_QUERIES: dict[str, dict[str, list[str]]] = {
    "api_runs": {
        "status": ["queued", "queued,running,succeeded"],
        "agent": ["iso-agent", "no-such-agent"],
        "flag": ["injection", "unsupported_claim"],
        "created_after": ["2020-01-01T00:00:00Z", "2020-01-01", "2020-01-01T00:00:00.5+02:00"],
        "created_before": ["2100-01-01T00:00:00Z", "2100-01-01T00:00:00"],
        "limit": ["1", "100"],
        "cursor": [],  # a real one is made by the pagination tests (tests/runs_api/test_runs_list.py)
    },
    "api_runs_messages": {"after": ["0", "3"], "limit": ["1", "500"]},
    "api_runs_events": {"after": ["0"], "follow": ["0"]},
    "api_spend": {"start": ["2026-01-01"], "end": ["2026-01-31"], "group": ["model", "agent"]},
    "api_escalations_list": {"status": ["pending", "approved"], "limit": ["1", "200"]},
    "api_prompts_get": {"label": ["production", "staging"], "version": ["1"]},
    "api_memory_facts": {"subject": ["ACC-1001", "no such subject"], "limit": ["1", "200"], "cursor": []},
}
# Sent with every query of the endpoint: an event stream that follows would wait for the run to end.
API_QUERY_BASE: dict[str, dict[str, str]] = {"api_runs_events": {"follow": "0"}}
_BAD_INT = ["", "-1", "x", "1.5", "1e3", "\u0661", "9" * 40]
API_BAD_QUERIES: dict[str, dict[str, list[str]]] = {
    "api_runs": {
        "status": ["", "nope", "queued,", "QUEUED", "a\x00b"],
        "agent": ["", "x" * 101],
        "flag": ["", "nope", "INJECTION", "injection,pii", "a\x00b"],
        "created_after": ["", "yesterday", "2026-13-01T00:00:00Z", "2026-01-01T25:00", "1e9", "x" * 5000, "a\x00b"],
        "created_before": ["", "2026-02-30", "\u0662\u0660\u0662\u0666-01-01"],
        "limit": [*_BAD_INT, "0", "101"],
        "cursor": ["x", "nope!", "W10", "WyJ4IiwxXQ", "x" * 5000, "a\x00b"],
    },
    "api_runs_messages": {"after": _BAD_INT, "limit": [*_BAD_INT, "0", "501"]},
    "api_runs_events": {"after": ["x", "1.5", "-"], "follow": []},  # follow: any value but "0" follows
    "api_spend": {"start": ["x", "2026-13-01"], "end": ["2026-02-30"], "group": ["nope", ""]},
    "api_escalations_list": {"status": ["nope", ""], "limit": [*_BAD_INT, "0", "201"]},
    "api_prompts_get": {"label": ["", "has/slash", "has space", "x" * 51, "a\x00b"], "version": [*_BAD_INT, "0"]},
    "api_memory_facts": {"subject": ["", "x" * 201, "a\x00b", " padded "], "limit": [*_BAD_INT, "0", "201"],
                         "cursor": ["x", "nope!", "x" * 5000, "a\x00b"]},
}
