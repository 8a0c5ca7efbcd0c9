"""Content-Security-Policy on every console page, generated from the URL resolver.

Every console URL (tenant pages, their htmx partials, login, the staff pages) is fetched as a user
who may read it, with real objects behind every id, and must answer with the policy header. Every
rendered HTML page must carry no inline script without this response's nonce, and no inline
event handler (``onclick=``…), which no nonce can allow.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tenants.models import Membership, Role
from tenants.services import api_key_create
from tests.factories import UserFactory
from tests.runs_console.factories import (
    AgentFactory,
    EscalationFactory,
    GrantFactory,
    MessageFactory,
    RunFactory,
    SpanFactory,
    ToolCallFactory,
)
from tests.url_inventory import all_routes

CONSOLE_ROUTES = [
    r for r in all_routes()
    if not r.route.startswith(("api/", "admin/", "^")) and r.route not in ("healthz", "readyz")
]


def _objects(tenant, members) -> dict[str, object]:  # type: ignore[no-untyped-def]
    agent = AgentFactory(tenant=tenant, name="support")
    run = RunFactory(agent=agent, status="running")
    root = SpanFactory(run=run, name="invoke_agent support")
    SpanFactory(run=run, name="chat claude-sonnet-4-5", parent_span_id=root.span_id,
                attributes={"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5})
    MessageFactory(run=run, seq=0, role="user", content=[{"type": "text", "text": "<script>alert(1)</script>"}])
    ToolCallFactory(run=run)
    escalation = EscalationFactory(run=run)
    grant = GrantFactory(tenant=tenant)
    key, _ = api_key_create(tenant=tenant, actor=None, name="ci", scopes=["runs"])
    from tenants.models import WebhookEndpoint
    from tenants.services import invitation_create

    invitation, token = invitation_create(
        tenant=tenant, actor_membership=Membership.objects.get(tenant=tenant, user=members[Role.ADMIN]),
        email="csp@example.com", role=Role.VIEWER,
    )
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.com/csp")
    from agentops.prompts import services as prompt_services
    from tests.prompts.conftest import new_version

    prompt = prompt_services.prompt_create(tenant=tenant, actor=members[Role.ADMIN], name="csp-prompt")
    version = new_version(tenant, members[Role.ADMIN], prompt)
    from agentops.evals.models import EvalAlert, EvalCase, EvalRun, EvalSuite

    suite = EvalSuite.objects.create(tenant=tenant, prompt=prompt, agent=agent, name="csp-suite")
    case = EvalCase.objects.create(tenant=tenant, suite=suite, name="csp-case", input="<script>alert(1)</script>")
    eval_run = EvalRun.objects.create(tenant=tenant, suite=suite, prompt_version=version)
    alert = EvalAlert.objects.create(tenant=tenant, eval_run=eval_run, message="csp: a drift alert")
    # MCP servers and tools, memory facts and failure-journal entries: the isolation tests' factories.
    from tests.test_isolation import _make_fact, _make_failure_entry, _make_mcp_server, _make_mcp_tool

    return {
        "server_id": _make_mcp_server(tenant),
        "tool_id": _make_mcp_tool(tenant),
        "fact_id": _make_fact(tenant),
        "failure_id": _make_failure_entry(tenant),
        "suite_id": suite.pk,
        "case_id": case.pk,
        "eval_run_id": eval_run.pk,
        "alert_id": alert.pk,
        "prompt_name": prompt.name,
        "number": str(version.number),
        "label": "production",
        "version_id": str(version.pk),
        "invitation_id": invitation.pk,
        "token": token,
        "endpoint_id": endpoint.pk,
        "slug": tenant.slug,
        "run_id": run.pk,
        "agent_id": agent.pk,
        "escalation_id": escalation.pk,
        "grant_id": grant.pk,
        "key_id": key.pk,
        "member_id": Membership.objects.get(tenant=tenant, user=members[Role.VIEWER]).pk,
    }


def _policy(resp) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = resp.get("Content-Security-Policy", "")
    return {d.split()[0]: d.split()[1:] for d in (part.strip() for part in header.split(";")) if d}


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.handlers += [f"<{tag} {k}=...>" for k in a if k.startswith("on")]
        if tag == "script" and "src" not in a:
            self._open = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.inline.append(self._open)
            self._open = None


def test_the_console_routes_are_found():
    names = {r.name for r in CONSOLE_ROUTES}
    assert {"login", "home", "detail", "detail_live", "spend", "inbox", "run_progress"} <= names


@pytest.mark.django_db
def test_every_console_page_has_the_policy_and_no_inline_script_without_the_nonce(tenant, members, client_for):
    values = _objects(tenant, members)
    staff = UserFactory(username="csp-staff", is_staff=True)
    admin = client_for(members[Role.ADMIN])
    checked_html = 0
    for route in CONSOLE_ROUTES:
        missing = set(route.converters) - set(values)
        assert not missing, f"{route.route}: add a real object for {missing} to _objects()"
        url = route.build(**values)
        client = client_for(staff) if route.route.startswith("staff/") else admin
        resp = client.get(url)
        assert resp.status_code < 500, (url, resp.status_code)
        policy = _policy(resp)
        assert policy, f"{url} ({resp.status_code}) has no Content-Security-Policy"
        assert policy["script-src"][0] == "'self'" and "'unsafe-inline'" not in policy["script-src"], url
        assert "'unsafe-eval'" not in policy["script-src"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"], url
        assert not any(src.startswith(("http:", "https:", "*")) for srcs in policy.values() for src in srcs), url
        if resp.status_code != 200 or not resp.get("Content-Type", "").startswith("text/html"):
            continue
        checked_html += 1
        html = resp.content.decode()
        parser = _Scripts()
        parser.feed(html)
        assert parser.handlers == [], f"{url}: inline event handlers {parser.handlers}"
        nonces = {src[len("'nonce-"):-1] for src in policy["script-src"] if src.startswith("'nonce-")}
        for attrs in parser.inline:
            if attrs.get("type") == "application/json":
                continue  # data (json_script), never executed
            assert attrs.get("nonce") in nonces, f"{url}: inline <script> without this response's nonce: {attrs}"
        # Scripts and stylesheets come from our own static files, never another origin.
        for ref in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
            assert not ref.startswith(("http:", "https:", "//")), f"{url}: external resource {ref}"
    assert checked_html >= 15


ADMIN_PAGES = [r for r in all_routes() if r.route.startswith("admin/") and not r.converters and r.name
               and r.name.endswith(("_changelist", "_add", "index"))]


@pytest.mark.django_db
def test_the_django_admin_works_under_the_same_policy(tenant, members, client_for):
    staff = UserFactory(username="csp-superuser", is_staff=True, is_superuser=True)
    client = client_for(staff)
    assert len(ADMIN_PAGES) >= 20
    for route in ADMIN_PAGES:
        url = route.build()
        resp = client.get(url)
        assert resp.status_code in (200, 403), (url, resp.status_code)  # 403: read-only models have no add page
        assert _policy(resp)["script-src"][0] == "'self'", url
        if resp.status_code != 200:
            continue
        parser = _Scripts()
        parser.feed(resp.content.decode())
        assert parser.handlers == [], f"{url}: inline event handlers {parser.handlers}"
        assert [a for a in parser.inline if a.get("type") != "application/json"] == [], f"{url}: inline script"


@pytest.mark.django_db
def test_an_inline_script_with_the_nonce_is_named_by_the_header(rf):
    from csp.middleware import CSPMiddleware
    from django.http import HttpResponse
    from django.template import engines

    template = engines["django"].from_string('<script nonce="{{ request.csp_nonce }}">go()</script>')

    def view(request):  # type: ignore[no-untyped-def]
        return HttpResponse(template.render({}, request))

    request = rf.get("/")
    resp = CSPMiddleware(view)(request)
    nonce = re.search(r'nonce="([^"]+)"', resp.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in _policy(resp)["script-src"]
