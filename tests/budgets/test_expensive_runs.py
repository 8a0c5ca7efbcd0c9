"""The spend page's "most expensive runs": ten at a time, dearest first, "Next" by a (cost, id) cursor."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from budgets.views import RUNS_SHOWN
from tests.runs_console.factories import AgentFactory, RunFactory

pytestmark = pytest.mark.django_db


def _run_ids(html: str) -> list[int]:
    table = html.split('id="expensive-runs"')[1].split("</table>")[0]
    return [int(n) for n in re.findall(r'/runs/(\d+)/"', table)]


def test_most_expensive_runs_page_by_a_cost_cursor_with_ties_and_the_range_kept(
    tenant, members, client_for, other_tenant
):
    agent = AgentFactory(tenant=tenant)
    # 23 runs: costs with ties (every cost twice), so the order needs the id too.
    runs = [RunFactory(agent=agent, cost=Decimal(f"0.{(i // 2) + 10:02d}")) for i in range(23)]
    RunFactory(agent=AgentFactory(tenant=other_tenant), cost=Decimal("99"))  # another tenant's: never listed
    expected = [r.pk for r in sorted(runs, key=lambda r: (r.cost, r.pk), reverse=True)]
    client = client_for(members["finance"])
    seen: list[int] = []
    url = "/t/acme/spend/?by=agent"
    for _ in range(5):
        html = client.get(url).content.decode()
        seen += _run_ids(html)
        found = re.search(r'href="\?([^"#]*runs_after=[^"#]*)#expensive-runs">Next', html)
        if not found:
            break
        url = "/t/acme/spend/?" + found.group(1).replace("&amp;", "&")
        assert "by=agent" in url  # the page's other choices stay
    assert seen == expected and len(expected) > 2 * RUNS_SHOWN
    assert "← Most expensive" in html


def test_a_bad_runs_cursor_is_a_400(tenant, members, client_for):
    client = client_for(members["finance"])
    for cursor in ("zzz", "1:", ":1", "NaN:1", "Infinity:2", "1:x", "1" * 80 + ":1"):
        assert client.get("/t/acme/spend/", {"runs_after": cursor}).status_code == 400, cursor
