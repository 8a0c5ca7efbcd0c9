"""The spend page's "most expensive runs": ten at a time, dearest first, "Next" by a (cost, id) cursor."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import F

from budgets.views import RUNS_SHOWN
from runs.models import Run
from tests.runs_console.factories import AgentFactory, RunFactory

pytestmark = pytest.mark.django_db


def _run_ids(html: str) -> list[int]:
    table = html.split('id="expensive-runs"')[1].split("</table>")[0]
    return [int(n) for n in re.findall(r'/runs/(\d+)/"', table)]


def _walk(client, url: str) -> tuple[list[int], str, list[str]]:  # type: ignore[no-untyped-def]
    """Follow "Next" from ``url``: the run ids in page order, the last page's HTML, the URLs followed."""
    seen: list[int] = []
    urls = [url]
    for _ in range(5):
        html = client.get(url).content.decode()
        seen += _run_ids(html)
        found = re.search(r'href="\?([^"#]*runs_after=[^"#]*)#expensive-runs">Next', html)
        if not found:
            break
        url = "/t/acme/spend/?" + found.group(1).replace("&amp;", "&")
        urls.append(url)
    return seen, html, urls


def test_most_expensive_runs_page_by_a_cost_cursor_with_ties_and_the_range_kept(
    tenant, members, client_for, other_tenant
):
    agent = AgentFactory(tenant=tenant)
    # 23 runs: costs with ties (every cost twice), so the order needs the id too.
    runs = [RunFactory(agent=agent, cost=Decimal(f"0.{(i // 2) + 10:02d}")) for i in range(23)]
    RunFactory(agent=AgentFactory(tenant=other_tenant), cost=Decimal("99"))  # another tenant's: never listed
    expected = [r.pk for r in sorted(runs, key=lambda r: (r.cost, r.pk), reverse=True)]
    seen, html, urls = _walk(client_for(members["finance"]), "/t/acme/spend/?by=agent")
    assert all("by=agent" in url for url in urls)  # the page's other choices stay
    assert seen == expected and len(expected) > 2 * RUNS_SHOWN
    assert "← Most expensive" in html


def test_finished_and_unfinished_runs_interleave_by_cost_across_pages(tenant, members, client_for):
    """Finished runs are read by cost_rank, the others by cost (migration 0012); the pages merge the two
    with ties between them broken by id, and a run that finishes, is charged late or resumes moves with it."""
    agent = AgentFactory(tenant=tenant)
    statuses = ["succeeded", "running", "failed", "awaiting_approval", "capped", "paused", "cancelled", "queued"]
    runs = [RunFactory(agent=agent, status=statuses[i % len(statuses)], cost=Decimal(f"0.{(i // 3) + 10:02d}")) for i in range(26)]
    Run.objects.filter(pk=runs[0].pk).update(cost=F("cost") + Decimal("5"))  # a late settlement on a finished run
    Run.objects.filter(pk=runs[1].pk).update(status="succeeded")  # a running run finishes
    Run.objects.filter(pk=runs[8].pk).update(status="running")  # a finished run resumed
    ranks = dict(Run.objects.filter(pk__in=[runs[0].pk, runs[1].pk, runs[8].pk]).values_list("pk", "cost_rank"))
    assert connection.vendor == "postgresql"  # the trigger is PostgreSQL's; SQLite ranks nothing and reads all by cost
    assert ranks == {runs[0].pk: Decimal("5.10"), runs[1].pk: Decimal("0.10"), runs[8].pk: None}
    fresh = Run.objects.filter(pk__in=[r.pk for r in runs])
    expected = [r.pk for r in sorted(fresh, key=lambda r: (r.cost, r.pk), reverse=True)]
    seen, _, _ = _walk(client_for(members["finance"]), "/t/acme/spend/")
    assert seen == expected and seen[0] == runs[0].pk


def test_a_bad_runs_cursor_is_a_400(tenant, members, client_for):
    client = client_for(members["finance"])
    for cursor in ("zzz", "1:", ":1", "NaN:1", "Infinity:2", "1:x", "1" * 80 + ":1"):
        assert client.get("/t/acme/spend/", {"runs_after": cursor}).status_code == 400, cursor
