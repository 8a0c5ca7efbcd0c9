"""Error pages render in the console layout, say what happened and where to go (issue 13);
under /api/ they stay JSON."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from agentops.outage import server_error
from tenants.models import Role
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db

SIDENAV = '<nav class="sidenav" aria-label="Tenant">'


def _html(resp) -> str:  # type: ignore[no-untyped-def]
    assert resp["Content-Type"].startswith("text/html"), resp["Content-Type"]
    return resp.content.decode()


def test_a_404_inside_a_tenant_shows_its_navigation(members, client_for):
    resp = client_for(members[Role.ADMIN]).get("/t/acme/runs/999999/")
    assert resp.status_code == 404
    html = _html(resp)
    assert SIDENAV in html and 'href="/t/acme/members/"' in html  # the admin's sidebar
    assert "Page not found" in html and 'href="/t/acme/">Acme home</a>' in html
    assert 'href="/static/css/app.css"' in html


def test_an_unknown_address_inside_a_tenant_is_a_404_in_its_layout(members, client_for):
    html = _html(client_for(members[Role.VIEWER]).get("/t/acme/no-such-page/"))
    assert SIDENAV in html and "Page not found" in html
    assert 'href="/t/acme/members/"' not in html  # a viewer's sidebar: no admin areas


def test_an_outsiders_404_shows_nothing_of_the_tenant(outsider, client_for):
    resp = client_for(outsider).get("/t/acme/members/")
    assert resp.status_code == 404
    html = _html(resp)
    assert SIDENAV not in html and "Acme" not in html
    assert "Page not found" in html and 'href="/">Your tenants</a>' in html
    assert "globex-admin" in html  # the top bar knows who is signed in


def test_an_anonymous_404_offers_to_log_in():
    html = _html(Client().get("/nowhere/"))
    assert "Page not found" in html and 'href="/login/">Log in</a>' in html


def test_a_wrong_role_gets_a_403_in_the_layout_with_its_role(members, client_for):
    resp = client_for(members[Role.VIEWER]).get("/t/acme/members/")
    assert resp.status_code == 403
    html = _html(resp)
    assert SIDENAV in html and 'href="/t/acme/runs/"' in html
    assert "Your role cannot open this" in html
    assert "Your role in this tenant does not allow this." in html and "You are viewer in Acme" in html


def test_a_refused_post_is_a_403_page_too(members, client_for):
    resp = client_for(members[Role.OPERATOR]).post("/t/acme/agents/kill-switch/", {"enabled": "1"})
    assert resp.status_code == 403 and SIDENAV in _html(resp)


@pytest.mark.usefixtures("clock")
def test_a_reversed_date_range_is_a_400_in_the_layout_with_the_reason(members, client_for):
    resp = client_for(members[Role.FINANCE]).get("/t/acme/spend/?start=2026-02-01&end=2026-01-01")
    assert resp.status_code == 400
    html = _html(resp)
    assert SIDENAV in html and 'href="/t/acme/spend/"' in html
    assert "That request could not be used" in html and "The start date is after the end date." in html
    assert "Nothing was changed" in html


def test_a_bad_kill_switch_value_is_a_400_page(members, client_for):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/agents/kill-switch/", {"enabled": "maybe"})
    assert resp.status_code == 400 and SIDENAV in _html(resp)


def test_a_500_renders_in_the_layout_of_the_signed_in_member(members):
    request = RequestFactory().get("/t/acme/")
    request.user = members[Role.ADMIN]
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        resp = server_error(request)
    assert resp.status_code == 500
    html = resp.content.decode()
    assert SIDENAV in html and "Something went wrong" in html and "<style>" not in html


def test_api_errors_stay_json(tenant):
    resp = Client().get("/api/v1/no-such-endpoint")
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found"
    _, secret = api_key_create(tenant=tenant, actor=None, name="t", scopes=["runs"])
    resp = Client().get("/api/v1/runs/999999", headers={"authorization": f"Bearer {secret}"})
    assert resp.status_code == 404 and resp["Content-Type"].startswith("application/json")
