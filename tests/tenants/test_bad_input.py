"""Bad input on console URLs: unknown tenants, malformed ids, NUL bytes and 1 MB strings get a
clear 4xx, never a 500. Cases are generated from the URL resolver, so new URLs are covered."""

from __future__ import annotations

import pytest

from tenants.models import AuditEvent, Membership, Role
from tests.url_inventory import tenant_routes

TENANT_ROUTES = tenant_routes()
ID_ROUTES = [r for r in TENANT_ROUTES if set(r.converters) - {"slug"}]
MALFORMED_IDS = ["abc", "-1", "0", "1.5", "1e3", "9" * 30, "١٢", "²", "0x10", "%20", "1%2C2"]
MB = "x" * (1024 * 1024)


def _values(route, slug="acme", ident="1"):  # type: ignore[no-untyped-def]
    return {k: (slug if k == "slug" else ident) for k in route.converters}


@pytest.fixture
def admin_client(members, client_for):  # type: ignore[no-untyped-def]
    # raise_request_exception (the default) turns any 500 into a test error.
    return client_for(members[Role.ADMIN])


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
@pytest.mark.parametrize("slug", ["no-such-tenant", "ACME", "a", "x" * 51, "acme-"])
def test_unknown_tenant_slug_is_404(route, slug, admin_client):
    url = route.build(**_values(route, slug=slug))
    assert admin_client.get(url).status_code == 404
    assert admin_client.post(url, {"role": "viewer"}).status_code == 404


def test_there_are_routes_with_ids():
    assert len(ID_ROUTES) >= 3


@pytest.mark.django_db
@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.route)
@pytest.mark.parametrize("ident", MALFORMED_IDS)
def test_malformed_ids_are_404(route, ident, admin_client):
    url = route.build(**_values(route, ident=ident))
    get, post = admin_client.get(url), admin_client.post(url, {"role": Role.VIEWER})
    assert 400 <= get.status_code < 500, (url, get.status_code)
    assert 400 <= post.status_code < 500, (url, post.status_code)
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.route)
def test_ids_that_do_not_exist_are_404(route, admin_client):
    url = route.build(**_values(route, ident=str(2**62)))
    if Role.ADMIN in route.callback.tenant_access.write:
        assert admin_client.post(url, {"role": Role.VIEWER}).status_code == 404
    else:
        assert admin_client.get(url).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_nul_bytes_in_forms_are_400(route, admin_client, tenant):
    url = route.build(**_values(route))
    body = {"username": "acme-\x00viewer", "email": "a\x00@example.test", "role": "viewer", "name": "k\x00", "scopes": ["runs"], "acts_as_role": "viewer"}
    assert admin_client.post(url, body).status_code == 400
    # Multipart and JSON spellings of NUL are refused as well.
    assert admin_client.post(url, {"name": "a\x00b"}, format="multipart").status_code == 400
    assert admin_client.post(url, '{"name": "a\\u0000b"}', content_type="application/json").status_code == 400
    assert admin_client.get(url + "?action=%00&page=%00").status_code == 400
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_one_megabyte_strings_in_forms_are_4xx(route, admin_client):
    url = route.build(**_values(route))
    resp = admin_client.post(url, {"username": MB, "email": MB, "role": "viewer", "name": MB, "scopes": ["runs"], "acts_as_role": "viewer"})
    assert resp.status_code == 413
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url,body",
    [
        ("/t/acme/members/", {"email": "x" * 100_000 + "@example.test", "role": "viewer"}),
        ("/t/acme/members/", {"email": "new@example.test", "role": "x" * 100_000}),
        ("/t/acme/members/", {"email": "", "role": ""}),
        ("/t/acme/members/", {"email": ["a@example.test", "b"], "role": ["viewer", "admin"]}),
        ("/t/acme/api-keys/", {"name": "x" * 100_000, "scopes": ["runs"], "acts_as_role": "viewer"}),
        ("/t/acme/api-keys/", {"name": "k", "scopes": ["x" * 100_000], "acts_as_role": "viewer"}),
        ("/t/acme/api-keys/", {"name": "k", "scopes": ["runs"], "acts_as_role": "x" * 100_000}),
    ],
    ids=["long-email", "long-role", "empty", "repeated-fields", "long-name", "long-scope", "long-role-key"],
)
def test_oversized_or_odd_fields_below_the_body_limit_are_400(url, body, admin_client, tenant):
    assert admin_client.post(url, body).status_code == 400
    assert not AuditEvent.objects.exists()
    assert Membership.objects.filter(tenant=tenant).count() == 5


@pytest.mark.django_db
def test_the_login_form_refuses_nul_and_huge_bodies(client, members):
    assert client.post("/login/", {"username": "acme-admin\x00", "password": "x"}).status_code == 400
    assert client.post("/login/", {"username": MB, "password": "x"}).status_code == 413
    resp = client.post("/login/", {"username": "x" * 10_000, "password": "y" * 10_000})
    assert resp.status_code == 200 and "did not match" in resp.content.decode()


@pytest.mark.django_db
def test_huge_query_strings_do_not_break_pages(admin_client):
    assert admin_client.get("/t/acme/audit/", {"action": MB, "page": MB}).status_code == 200
    assert admin_client.get("/", {"t": MB}).status_code in (200, 302)


# A body every console form would accept but for the hostile values: JSON fields carry "\ud800"
# escapes (a lone surrogate once decoded, which PostgreSQL cannot store) or nest 1,000 deep; text
# fields carry bytes that are not UTF-8. Generated for every tenant URL: a 4xx (or a redirect
# after a harmless save), never a 500.
FORM = {
    "name": "fuzz", "description": "d", "system_prompt": "Be brief.", "model": "claude-sonnet-4-5", "fallback_model": "",
    "max_tokens": "1024", "iteration_cap": "25", "repetition_threshold": "3", "wall_clock_limit_s": "900",
    "task_cost_cap": "1.50", "tool_name": "fetch_url", "agent": "", "role": "viewer", "username": "acme-viewer",
    "scopes": "runs", "acts_as_role": "viewer", "input": "hi", "comment": "c", "decision": "reject", "enabled": "1",
}
HOSTILE_JSON = {
    "surrogate-value": {"routing": '{"complex_keywords": ["\\ud800"]}', "allow": '{"domains": ["\\udfff.example"]}',
                        "approval_over": '{"amount": "\\ud800"}'},
    "surrogate-key": {"routing": '{"\\ud800": 1}', "allow": '{"domains\\ud800": ["a.example"]}', "approval_over": '{"\\ud800": "1"}'},
    "deep": dict.fromkeys(("routing", "allow", "approval_over"), '{"a": ' + "[" * 1000 + "]" * 1000 + "}"),
}


def _urlencoded(fields: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(fields)


@pytest.mark.django_db
@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.route)
def test_lone_surrogates_deep_json_and_bad_utf8_in_forms_never_5xx(route, members, client_for, tenant):
    from django.test import Client

    from runs.models import Agent

    # A member who may POST here (admin where allowed), so the form is really read.
    write = route.callback.tenant_access.write
    role = Role.ADMIN if Role.ADMIN in write or not write else sorted(write)[0]
    client = Client(raise_request_exception=False)
    client.force_login(members[role])

    agent = Agent.objects.create(tenant=tenant, name="target", system_prompt="x")
    from tests.url_inventory import API_OBJECT_FACTORIES

    # Real objects where a factory exists (runs, escalations), so the view gets as far as the form.
    ids = {k: API_OBJECT_FACTORIES[k](tenant) if k in API_OBJECT_FACTORIES else agent.pk for k in route.converters}
    url = route.build(**{k: ("acme" if k == "slug" else str(v)) for k, v in ids.items()})
    wrong = []
    for case, json_fields in HOSTILE_JSON.items():
        resp = client.post(url, {**FORM, **json_fields})
        if resp.status_code >= 500:
            wrong.append((case, resp.status_code))
    # Not UTF-8 (an encoded surrogate, a lone continuation byte) in every text field.
    raw = _urlencoded(FORM).replace("fuzz", "%ED%A0%80").replace("hi", "%80%FF").replace("=c", "=%ED%BF%BF")
    resp = client.post(url, raw, content_type="application/x-www-form-urlencoded")
    if resp.status_code >= 500:
        wrong.append(("not-utf8", resp.status_code))
    # Every field long, the body still under the server's limit.
    resp = client.post(url, dict.fromkeys([*FORM, "routing", "allow", "approval_over"], "x" * 12000))
    if resp.status_code >= 500:
        wrong.append(("long-fields", resp.status_code))
    assert wrong == []
