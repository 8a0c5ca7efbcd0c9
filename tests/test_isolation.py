"""Tenant isolation, generated from the URL resolver.

For every ``/t/<slug>/`` URL: an outsider (admin of another tenant) gets 404 on GET and POST;
each role outside the view's read set gets 403 on GET, outside its write set 403 on POST.
For every ``/api/`` URL: no key 401, a key without the scope 403, another tenant's key 404 on
that tenant's objects. A URL that escapes the scoping decorators fails the suite.
"""

from __future__ import annotations

import json

import pytest

from tenants.models import ApiScope, Role
from tests.url_inventory import (
    API_OBJECT_FACTORIES,
    API_VALID_BODIES,
    _make_eval_suite,
    api_routes,
    escaping_routes,
    tenant_routes,
)

TENANT_ROUTES = tenant_routes()


def _values(route, slug="acme"):  # type: ignore[no-untyped-def]
    # The decorator decides before any object lookup, so placeholder ids are enough here.
    return {k: (slug if k == "slug" else "1") for k in route.converters}


def test_there_are_tenant_routes_to_check():
    assert len(TENANT_ROUTES) >= 5


def test_no_url_escapes_the_scoping_decorators():
    assert escaping_routes() == []


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_every_tenant_view_is_decorated(route):
    assert hasattr(route.callback, "tenant_access"), f"{route.route} is not wrapped by tenant_view()"


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_outsider_gets_404(route, tenant, members, outsider, client_for):
    client = client_for(outsider)
    url = route.build(**_values(route))
    assert client.get(url).status_code == 404
    assert client.post(url, {"x": "1"}).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_anonymous_is_sent_to_login(route, tenant, client):
    resp = client.get(route.build(**_values(route)))
    assert resp.status_code == 302 and "/login/" in resp["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_wrong_role_gets_403(route, tenant, members, client_for):
    access = route.callback.tenant_access
    url = route.build(**_values(route))
    for role in Role.values:
        client = client_for(members[role])
        if role not in access.read:
            assert client.get(url).status_code == 403, (route.route, role, "GET")
        if role not in access.write:
            assert client.post(url, {"x": "1"}).status_code == 403, (route.route, role, "POST")


@pytest.mark.django_db
def test_unknown_tenant_slug_is_404(members, client_for):
    client = client_for(members[Role.ADMIN])
    assert client.get("/t/no-such-tenant/").status_code == 404
    assert client.get("/t/" + "x" * 300 + "/").status_code == 404


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r.route)
def test_every_api_view_is_a_documented_operation_with_a_scope(route):
    # From the OpenAPI document: a route there is a ninja operation whose auth is tenants.api.ApiKey.
    assert route.operations, f"{route.route} is not an operation of the NinjaAPI (agentops/api.py)"
    assert route.scope in tuple(ApiScope.values)


# --- API ------------------------------------------------------------------------------

def _api_key(tenant, scopes):  # type: ignore[no-untyped-def]
    from tenants.services import api_key_create

    return api_key_create(tenant=tenant, actor=None, name="iso", scopes=scopes)[1]


def _call(client, route, url, key, tenant=None, method=None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if (method or ("POST" if "POST" in _methods(route) else "GET")) == "POST":
        # A valid body: the body is checked before any lookup, so only a valid one reaches the 404.
        body = API_VALID_BODIES[route.name](tenant) if tenant is not None else {}
        return client.post(url, data=json.dumps(body), content_type="application/json", **headers)
    return client.get(url, **headers)


def _methods(route):  # type: ignore[no-untyped-def]
    return route.methods


API_ROUTES = api_routes()


def test_there_are_api_routes_to_check():
    assert len(API_ROUTES) >= 4


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.route)
def test_api_without_a_key_is_401_and_without_the_scope_403(route, tenant, client):
    values = {k: (API_OBJECT_FACTORIES[k](tenant) if k in API_OBJECT_FACTORIES else "1") for k in route.converters}
    url = route.build(**values)
    scope = route.scope
    other_scopes = [s for s in tuple(ApiScope.values) if s != scope]
    for method in _methods(route):  # each method the endpoint answers (GET and POST on /api/v1/runs)
        assert _call(client, route, url, None, method=method).status_code == 401, method
        assert _call(client, route, url, "aok_deadbeef_notarealkey000000", method=method).status_code == 401, method
        assert _call(client, route, url, _api_key(tenant, other_scopes), method=method).status_code == 403, method


@pytest.mark.django_db
@pytest.mark.parametrize("route", [r for r in API_ROUTES if r.converters], ids=lambda r: r.route)
def test_api_other_tenants_key_gets_404(route, tenant, other_tenant, client):
    missing = set(route.converters) - set(API_OBJECT_FACTORIES)
    assert not missing, f"add a factory for {missing} to API_OBJECT_FACTORIES"
    url = route.build(**{k: API_OBJECT_FACTORIES[k](tenant) for k in route.converters})
    key = _api_key(other_tenant, list(ApiScope.values))
    for method in _methods(route):
        resp = _call(client, route, url, key, tenant=other_tenant, method=method)
        assert resp.status_code == 404, (route.route, method, resp.status_code)
        assert resp.json()["error"]["type"] == "not_found"


# --- Console URLs with real objects ----------------------------------------------------------
# The tests above stop at the decorator (placeholder ids). These build every id-bearing console
# URL with a real object of tenant A, so a view that looks an object up without its tenant shows:
# tenant B's admin, under B's own slug, must get 404 for A's object. A new URL kwarg fails
# test_console_object_factories_cover_every_kwarg until a factory is added here.

def _make_membership(tenant):  # type: ignore[no-untyped-def]
    from tests.factories import MembershipFactory, UserFactory

    return MembershipFactory(tenant=tenant, role=Role.VIEWER, user=UserFactory(username=f"iso-{tenant.slug}")).pk


def _make_key(tenant):  # type: ignore[no-untyped-def]
    return _api_key_row(tenant).pk


def _api_key_row(tenant):  # type: ignore[no-untyped-def]
    from tenants.services import api_key_create

    return api_key_create(tenant=tenant, actor=None, name="iso", scopes=["runs"])[0]


def _make_agent(tenant):  # type: ignore[no-untyped-def]
    from runs.models import Agent

    return Agent.objects.get_or_create(tenant=tenant, name="iso-agent", defaults={"system_prompt": "x"})[0].pk


def _make_grant(tenant):  # type: ignore[no-untyped-def]
    from runs.models import ToolGrant

    return ToolGrant.objects.create(tenant=tenant, tool_name="search_kb").pk


def _make_webhook_endpoint(tenant):  # type: ignore[no-untyped-def]
    from tenants.models import WebhookEndpoint

    # Stored directly: the URL guard is not what this test is about (tests/tenants/test_webhooks.py is).
    return WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.com/iso").pk


def _make_invitation(tenant):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from tenants.models import Invitation

    raw = Invitation.generate_token()
    return Invitation.objects.create(
        tenant=tenant, email="iso@example.com", role="viewer", token_hash=Invitation.hash_token(raw),
        expires_at=timezone.now() + timedelta(days=7),
    ).pk


def _make_failure_entry(tenant):  # type: ignore[no-untyped-def]
    from agentops.memory.models import FailureEntry

    return FailureEntry.objects.get_or_create(tenant=tenant, agent_id=_make_agent(tenant), tool="issue_refund", pattern="{}",
                                              kind="tool_error", error_type="validation_error", defaults={"message": "iso"})[0].pk


def _make_eval_alert(tenant):  # type: ignore[no-untyped-def]
    from agentops.evals.models import EvalAlert, EvalRun

    return EvalAlert.objects.create(tenant=tenant, eval_run=EvalRun.objects.get(pk=API_OBJECT_FACTORIES["eval_run_id"](tenant)),
                                    message="iso").pk


def _make_version(tenant):  # type: ignore[no-untyped-def]
    from agentops.prompts.models import PromptVersion

    return PromptVersion.objects.for_tenant(tenant).get(prompt__name=API_OBJECT_FACTORIES["prompt_name"](tenant), number=1).pk


def _make_fact(tenant):  # type: ignore[no-untyped-def]
    from django.utils import timezone

    from agentops.memory.facts import write_fact

    return write_fact(tenant_id=tenant.pk, subject="iso-subject", text="Prefers email.", source="operator", run_id=None, seq=None,
                      agent_id=None, now=timezone.now()).pk


def _make_mcp_server(tenant):  # type: ignore[no-untyped-def]
    from agentops.mcp.models import McpServer, StdioCommand

    # Stored directly, on a command that does not exist: a refresh fails fast without any network
    # (registration and refresh are tested in tests/mcp/).
    command, _ = StdioCommand.objects.get_or_create(key="iso-missing", defaults={"label": "iso", "command": "/nonexistent/mcp-iso"})
    return McpServer.objects.get_or_create(tenant=tenant, name="iso", defaults={"transport": "stdio", "stdio_command": command})[0].pk


def _make_mcp_tool(tenant):  # type: ignore[no-untyped-def]
    from agentops.mcp.models import McpTool

    server_id = _make_mcp_server(tenant)
    return McpTool.objects.get_or_create(tenant=tenant, server_id=server_id, remote_name="lookup", defaults={
        "name": "mcp__iso__lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}})[0].pk


CONSOLE_OBJECT_FACTORIES = {
    "server_id": _make_mcp_server,
    "tool_id": _make_mcp_tool,
    "prompt_name": API_OBJECT_FACTORIES["prompt_name"],
    "number": lambda tenant: API_OBJECT_FACTORIES["prompt_name"](tenant) and 1,
    "label": API_OBJECT_FACTORIES["label"],
    "version_id": _make_version,
    "member_id": _make_membership,
    "invitation_id": _make_invitation,
    "key_id": _make_key,
    "endpoint_id": _make_webhook_endpoint,
    "run_id": API_OBJECT_FACTORIES["run_id"],
    "agent_id": _make_agent,
    "grant_id": _make_grant,
    "escalation_id": API_OBJECT_FACTORIES["escalation_id"],
    "eval_run_id": API_OBJECT_FACTORIES["eval_run_id"],
    "suite_id": lambda tenant: _make_eval_suite(tenant).pk,
    "case_id": lambda tenant: _make_eval_suite(tenant).cases.get().pk,
    "alert_id": _make_eval_alert,
    "fact_id": _make_fact,
    "failure_id": _make_failure_entry,
}
OBJECT_ROUTES = [r for r in TENANT_ROUTES if set(r.converters) - {"slug"}]


def test_console_object_factories_cover_every_kwarg():
    kwargs = {k for r in OBJECT_ROUTES for k in r.converters} - {"slug"}
    assert kwargs <= set(CONSOLE_OBJECT_FACTORIES), f"add factories for {kwargs - set(CONSOLE_OBJECT_FACTORIES)}"
    assert any("endpoint_id" in r.converters for r in OBJECT_ROUTES)


@pytest.mark.django_db
@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=lambda r: r.route)
def test_another_tenants_admin_gets_404_for_this_tenants_objects(route, tenant, members, other_tenant, outsider, client_for):
    ids = {k: CONSOLE_OBJECT_FACTORIES[k](tenant) for k in route.converters if k != "slug"}
    # The object is real: this tenant's admin reaches it (405 for a POST-only view is not a 404).
    assert client_for(members[Role.ADMIN]).get(route.build(slug=tenant.slug, **ids)).status_code != 404
    # Under this tenant's slug the outsider is not a member; under its own slug the object is not there.
    client = client_for(outsider)
    url = route.build(slug=tenant.slug, **ids)
    assert client.get(url).status_code == 404
    assert client.post(url, {"x": "1"}).status_code == 404
    own = route.build(slug=other_tenant.slug, **ids)
    access = route.callback.tenant_access
    if Role.ADMIN in access.read:  # 405: a POST-only view, refused before any lookup
        assert client.get(own).status_code in (404, 405), own
    if Role.ADMIN in access.write:  # a read-only view answers POST with 403 before any lookup
        assert client.post(own, {"x": "1", "role": "viewer", "decision": "approve"}).status_code == 404, own
