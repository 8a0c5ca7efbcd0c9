from __future__ import annotations

from datetime import timedelta

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import Run, RunStatus
from tenants.models import Role
from tests.runs_console.factories import AgentFactory, EscalationFactory, MessageFactory, RunFactory, runs_url


def _rows(html: str) -> dict[int, str]:
    """Each table row's HTML by run id."""
    chunks = html.split('<tr data-run="')[1:]
    return {int(c[: c.index('"')]): c[: c.index("</tr>")] for c in chunks}


def _ids(resp):  # type: ignore[no-untyped-def]
    return [r.pk for r in resp.context["runs"]]


def test_it_lists_runs_newest_first_for_every_role(agent, members, client_for):
    old = RunFactory(agent=agent, created_at=timezone.now() - timedelta(hours=2))
    new = RunFactory(agent=agent)
    for role in Role.values:
        resp = client_for(members[role]).get(runs_url("list"))
        assert resp.status_code == 200, role
        assert _ids(resp) == [new.pk, old.pk]


def test_it_never_shows_another_tenants_runs(agent, other_tenant, admin):
    mine = RunFactory(agent=agent)
    RunFactory(agent=AgentFactory(tenant=other_tenant))
    assert _ids(admin.get(runs_url("list"))) == [mine.pk]


def test_it_filters_by_status_agent_and_outcome(tenant, agent, admin):
    other = AgentFactory(tenant=tenant, name="billing")
    ok = RunFactory(agent=agent)
    failed = RunFactory(agent=agent, status=RunStatus.FAILED, outcome="max_iterations")
    billing = RunFactory(agent=other, status=RunStatus.CAPPED, outcome="tenant_month")
    assert _ids(admin.get(runs_url("list"), {"status": "failed"})) == [failed.pk]
    assert _ids(admin.get(runs_url("list"), {"agent": other.pk})) == [billing.pk]
    assert _ids(admin.get(runs_url("list"), {"outcome": "end_turn"})) == [ok.pk]
    assert _ids(admin.get(runs_url("list"), {"status": "failed", "agent": other.pk})) == []


def test_it_searches_input_text_and_run_id(agent, admin):
    refund = RunFactory(agent=agent, input="I want a REFUND for order 77")
    other = RunFactory(agent=agent, input="Where is my parcel?")
    assert _ids(admin.get(runs_url("list"), {"q": "refund"})) == [refund.pk]
    assert _ids(admin.get(runs_url("list"), {"q": str(other.pk)})) == [other.pk]
    assert _ids(admin.get(runs_url("list"), {"q": f"#{other.pk}"})) == [other.pk]


def test_a_search_shorter_than_a_trigram_is_refused_unless_it_is_a_run_number(agent, admin):
    run = RunFactory(agent=agent, input="ok then")
    resp = admin.get(runs_url("list"), {"q": " ok "})
    assert resp.status_code == 400 and "at least 3 characters" in resp.content.decode()
    assert admin.get(runs_url("list"), {"q": "#1"}).status_code == 200 and admin.get(runs_url("list"), {"q": "7"}).status_code == 200
    assert _ids(admin.get(runs_url("list"), {"q": "ok t"})) == [run.pk]


def test_bad_filters_are_a_400_not_a_500(agent, other_tenant, admin):
    foreign = AgentFactory(tenant=other_tenant)
    assert admin.get(runs_url("list"), {"status": "exploded"}).status_code == 400
    assert admin.get(runs_url("list"), {"agent": "abc"}).status_code == 400
    assert admin.get(runs_url("list"), {"agent": foreign.pk}).status_code == 400
    assert admin.get(runs_url("list"), {"q": "x" * 5000}).status_code == 400
    assert admin.get(runs_url("list"), {"page": "zzz"}).status_code == 200  # old links still open the list
    for cursor in ("zzz", "1.", ".1", "1.2.3", "9" * 30 + ".1", "-" + "9" * 30 + ".1"):
        assert admin.get(runs_url("list"), {"after": cursor}).status_code == 400, cursor


def test_a_refused_filter_does_not_claim_there_are_no_runs(agent, admin):
    RunFactory(agent=agent)
    resp = admin.get(runs_url("list"), {"agent": "support"})
    assert resp.status_code == 400
    assert b"No runs match these filters." in resp.content and b"No runs yet." not in resp.content


def test_it_pages_by_fifty_with_a_cursor_not_a_count(agent, admin):
    same_time = timezone.now() - timedelta(minutes=5)
    RunFactory.create_batch(30, agent=agent)
    RunFactory.create_batch(25, agent=agent, created_at=same_time)  # ties across the page boundary
    everything = list(Run.objects.filter(tenant=agent.tenant).order_by("-created_at", "-id").values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        first = admin.get(runs_url("list"))
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    cursor = first.context["page"].next_cursor
    assert cursor and f"after={cursor}" in first.content.decode() and b"Older" in first.content
    second = admin.get(runs_url("list"), {"after": cursor})
    assert _ids(first) + _ids(second) == everything
    assert len(_ids(second)) == 5 and second.context["page"].next_cursor == "" and b"Newest" in second.content


def test_the_cursor_keeps_the_filters(agent, admin):
    RunFactory.create_batch(52, agent=agent, status=RunStatus.FAILED, outcome="max_iterations")
    RunFactory.create_batch(3, agent=agent)
    first = admin.get(runs_url("list"), {"status": "failed"})
    assert "status=failed&amp;after=" in first.content.decode()
    second = admin.get(runs_url("list"), {"status": "failed", "after": first.context["page"].next_cursor})
    assert len(_ids(second)) == 2 and {r.status for r in second.context["runs"]} == {"failed"}


def test_it_searches_the_result_too(agent, admin):
    hit = RunFactory(agent=agent, input="order 1", result="Refund issued to the card")
    RunFactory(agent=agent, input="order 2", result="Parcel found")
    assert _ids(admin.get(runs_url("list"), {"q": "REFUND"})) == [hit.pk]


def test_the_outcome_choices_come_from_the_runs_without_a_distinct(agent, other_tenant, admin):
    RunFactory(agent=agent, outcome="max_iterations")
    RunFactory(agent=agent, outcome="end_turn")
    RunFactory(agent=AgentFactory(tenant=other_tenant), outcome="tenant_month")
    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        resp = admin.get(runs_url("list"))
    assert resp.context["outcomes"] == ["end_turn", "max_iterations"]
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    with CaptureQueriesContext(connection) as cached:
        admin.get(runs_url("list"))
    assert len(cached.captured_queries) == len(queries.captured_queries) - 1
    assert "refused_x" in admin.get(runs_url("list"), {"outcome": "refused_x"}).context["outcomes"]


def test_it_shows_flags_cost_and_submitter(agent, admin, admin_user):
    run = RunFactory(agent=agent, submitted_by=admin_user, reschedules=2, flags=["injection"])
    MessageFactory(run=run, seq=1, flags=["injection"])
    EscalationFactory(run=run)
    clean = RunFactory(agent=agent)
    rows = _rows(admin.get(runs_url("list")).content.decode())
    assert "injection" in rows[run.pk] and "gated" in rows[run.pk] and "rescheduled ×2" in rows[run.pk]
    assert "$0.01" in rows[run.pk] and admin_user.username in rows[run.pk]
    assert "injection" not in rows[clean.pk] and "gated" not in rows[clean.pk]


def test_the_list_costs_a_fixed_number_of_queries(agent, admin, admin_user):
    for _ in range(5):
        run = RunFactory(agent=agent, submitted_by=admin_user, flags=["injection", "unsupported_claim"])
        MessageFactory(run=run, seq=1, flags=["injection"])
    admin.get(runs_url("list"))
    with CaptureQueriesContext(connection) as few:
        admin.get(runs_url("list"))
    for _ in range(20):
        RunFactory(agent=AgentFactory(tenant=agent.tenant), submitted_by=admin_user)
    with CaptureQueriesContext(connection) as many:
        admin.get(runs_url("list"))
    assert len(many.captured_queries) == len(few.captured_queries)


def test_runs_filter_by_flag_model_cost_and_date_and_the_filters_stay_in_the_url(tenant, members, client_for):
    from datetime import UTC, datetime
    from decimal import Decimal

    from tests.runs_console.factories import AgentFactory, MessageFactory, RunFactory

    agent = AgentFactory(tenant=tenant)
    cheap = RunFactory(agent=agent, model_used="claude-haiku-4-5", cost=Decimal("0.002"), created_at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    dear = RunFactory(agent=agent, model_used="claude-sonnet-4-5", cost=Decimal("1.50"), created_at=datetime(2026, 3, 5, 12, tzinfo=UTC))
    MessageFactory(run=dear, flags=["injection"])
    dear.flags = ["injection"]  # the loop keeps the union of the turns' flags on the run (Run.flags)
    dear.save(update_fields=["flags"])
    client = client_for(members["viewer"])

    def shown(query: str) -> set[int]:
        resp = client.get(f"/t/acme/runs/?{query}")
        assert resp.status_code == 200, resp.content[:500]
        return {r.pk for r in resp.context["runs"]}

    assert shown("flag=injection") == {dear.pk}
    assert shown("model=claude-haiku-4-5") == {cheap.pk}
    assert shown("cost_min=0.01") == {dear.pk}
    assert shown("cost_max=0.01") == {cheap.pk}
    assert shown("created_from=2026-03-02&created_to=2026-03-31") == {dear.pk}
    assert shown("created_to=2026-03-01") == {cheap.pk}
    page = client.get("/t/acme/runs/?model=claude-haiku-4-5&cost_min=0.001").content.decode()
    assert 'value="claude-haiku-4-5"' in page and 'value="0.001"' in page  # the filter state is the URL's
    for bad in ("cost_min=2&cost_max=1", "created_from=2026-03-05&created_to=2026-03-01", "cost_min=-1", "created_from=yesterday",
                "flag=nope"):
        assert client.get(f"/t/acme/runs/?{bad}").status_code == 400
