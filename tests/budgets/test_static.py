"""The spend pages' scripts: a partial plotly bundle that has every trace type the charts use,
served gzipped with far-future cache headers, loaded with defer (issue 13: spend took 2.7-6.9 s)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from django.conf import settings

from tenants.models import Role
from tests.budgets.test_views import spent  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

VENDOR = Path(settings.BASE_DIR) / "static" / "vendor"
PLOTLY = "/static/vendor/plotly-basic-4.1.1.min.js"
# What plotly.js-basic-dist-min registers; a chart with another trace type would draw nothing.
BASIC_TRACES = {"scatter", "bar", "pie"}


def _body(resp) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(resp.streaming_content)


def test_every_vendored_script_has_a_matching_gzip_beside_it():
    scripts = sorted(VENDOR.glob("*.min.js"))
    assert {p.name for p in scripts} >= {"plotly-basic-4.1.1.min.js", "htmx-2.0.11.min.js"}
    for path in scripts:
        assert gzip.decompress((VENDOR / (path.name + ".gz")).read_bytes()) == path.read_bytes(), path.name
    # The bundle is the partial one (the full 4.8 MB one is gone), and it registers the basic traces.
    head = (VENDOR / "plotly-basic-4.1.1.min.js").read_bytes()[:200]
    assert b"plotly.js (basic - minified) v4.1.1" in head
    assert not (VENDOR / "plotly-4.1.1.min.js").exists()


def test_plotly_is_served_gzipped_and_cached_for_a_year(client):
    resp = client.get(PLOTLY, headers={"accept-encoding": "gzip, deflate, br"})
    assert resp.status_code == 200
    assert resp["Content-Encoding"] == "gzip"
    assert "immutable" in resp["Cache-Control"] and "max-age=315360000" in resp["Cache-Control"]
    body = _body(resp)
    assert len(body) < 450_000
    assert gzip.decompress(body) == (VENDOR / "plotly-basic-4.1.1.min.js").read_bytes()
    # A client that does not take gzip gets the plain file.
    plain = client.get(PLOTLY)
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    assert _body(plain)[:3] == b"/**"


def test_unversioned_files_are_not_cached_forever(client):
    resp = client.get("/static/js/charts.js")
    assert resp.status_code == 200 and "immutable" not in resp.get("Cache-Control", "")


@pytest.mark.usefixtures("spent")
def test_spend_charts_use_only_trace_types_the_bundle_has_and_load_deferred(members, client_for, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    pages = [client_for(members[Role.FINANCE]).get("/t/acme/spend/"), client_for(admin_user).get("/staff/budgets/spend/")]
    for resp in pages:
        html = resp.content.decode()
        assert resp.status_code == 200
        # In <head>, deferred: the page parses and paints without waiting for plotly.
        head = html.split("</head>")[0]
        assert f'<script src="{PLOTLY}" defer></script>' in head
        assert '<script src="/static/js/charts.js" defer></script>' in head
        figures = re.findall(r'<script id="(fig-[^"]+)" type="application/json">(.*?)</script>', html, re.S)
        assert len(figures) >= 2
        types = {trace.get("type", "scatter") for _, fig in figures for trace in json.loads(fig)["data"]}
        assert types and types <= BASIC_TRACES, types
