"""Junk sent to every runs console URL by an admin gets a 4xx or a redirect, never a 500."""

from __future__ import annotations

import pytest

from tests.url_inventory import tenant_routes

ROUTES = [r for r in tenant_routes() if (r.name or "").startswith(("list", "new", "detail", "cancel", "pause", "resume", "agent", "tenant_killswitch", "grant"))
          and r.callback.__module__ == "runs.views"]
JUNK = [{"x": "1"}, {"agent": "1", "input": "hi", "enabled": "2", "tool_name": "nope", "allow": "{", "routing": "["}, {"q": "é" * 300}]


def test_there_are_runs_console_routes():
    assert len(ROUTES) >= 12


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.route)
def test_junk_never_causes_a_500(route, agent, admin):
    for ident in ("1", str(agent.pk), "x", "99999999999999999999"):
        url = route.build(**{k: ("acme" if k == "slug" else ident) for k in route.converters})
        for body in JUNK:
            assert admin.get(url, body).status_code < 500, (url, body)
            assert admin.post(url, body).status_code < 500, (url, body)
