"""CSRF on every console POST, generated from the URL resolver so a new URL is covered at once.

A POST without the token must be refused by the CSRF check itself (Django's 403 page says "CSRF
verification failed"), before any view runs and changes anything; the same POST with the token must get past
it, which proves the refusal was CSRF and not the role check. The JSON API is the exception:
it authenticates with Bearer keys, never cookies, so it is exempt.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tenants.models import AuditEvent, Membership, Role
from tests.factories import PASSWORD
from tests.url_inventory import all_routes

CONSOLE_ROUTES = [
    r for r in all_routes()
    if not r.route.startswith(("api/", "admin/", "django-rq/", "^"))
]
API_ROUTES = [r for r in all_routes() if r.route.startswith("api/")]


def _values(route, tenant, members):  # type: ignore[no-untyped-def]
    """Real ids so a POST that got past CSRF could actually change something."""
    member = Membership.objects.get(tenant=tenant, user=members[Role.VIEWER])
    values = {}
    for name in route.converters:
        if name == "slug":
            values[name] = tenant.slug
        elif name == "member_id":
            values[name] = member.pk
        else:
            values[name] = 1
    return values


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_the_console_has_post_routes_to_check():
    names = {r.name for r in CONSOLE_ROUTES}
    assert {"login", "logout", "members", "member_role", "member_remove", "api_keys", "api_key_revoke"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize("route", CONSOLE_ROUTES, ids=lambda r: r.route or "/")
def test_a_post_without_the_token_is_refused(route, tenant, members):
    client = _client(members[Role.ADMIN])
    url = route.build(**_values(route, tenant, members))
    resp = client.post(url, {"username": "acme-viewer", "role": Role.ADMIN, "name": "k", "scopes": ["runs"]})
    assert resp.status_code == 403, (url, resp.status_code)
    assert b"CSRF verification failed" in resp.content
    assert not AuditEvent.objects.exists()
    assert Membership.objects.get(tenant=tenant, user=members[Role.VIEWER]).role == Role.VIEWER
    # A wrong token is no better than none.
    resp = client.post(url, {"csrfmiddlewaretoken": "x" * 64}, HTTP_X_CSRFTOKEN="y" * 64)
    assert resp.status_code == 403 and b"CSRF verification failed" in resp.content


@pytest.mark.django_db
@pytest.mark.parametrize("route", CONSOLE_ROUTES, ids=lambda r: r.route or "/")
def test_the_same_post_with_the_token_passes_the_check(route, tenant, members):
    client = _client(members[Role.ADMIN])
    client.get("/login/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    url = route.build(**_values(route, tenant, members))
    resp = client.post(url, {"role": Role.VIEWER}, HTTP_X_CSRFTOKEN=token)
    assert b"CSRF verification failed" not in resp.content, url


@pytest.mark.django_db
@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: r.route)
def test_the_api_is_exempt_because_it_uses_bearer_keys(route, tenant):
    url = route.build(**dict.fromkeys(route.converters, "1"))
    resp = Client(enforce_csrf_checks=True).post(url, "{}", content_type="application/json")
    assert b"CSRF verification failed" not in resp.content
    assert resp["Content-Type"].startswith("application/json")
