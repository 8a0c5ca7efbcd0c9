"""Finance pages, export, caps forms, estimates, staff view: roles, bad input, isolation."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from budgets.models import AgentEstimate, SpendEntry, TenantCaps, UserCap
from budgets.services import reservation_open, reservation_settle
from tenants.models import AuditEvent, Role
from tests.budgets._workers import FULL_USAGE

# The page's default range and "this month" figures depend on the date: a frozen clock.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def spent(make_run, tenant):
    run = make_run()
    res = reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    return reservation_settle(reservation=res, usage=FULL_USAGE, model="claude-sonnet-4-5-20250929", response_id="msg_1")


def test_finance_sees_the_spend_page_with_charts(spent, members, client_for):
    resp = client_for(members[Role.FINANCE]).get("/t/acme/spend/")
    assert resp.status_code == 200
    html = resp.content.decode()
    # Plotly is the vendored copy; no script or stylesheet comes from another origin (a CDN).
    assert '<script src="/static/vendor/plotly-basic-4.1.1.min.js" defer></script>' in html
    refs = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]*)"', html)
    assert refs and not [r for r in refs if r.startswith(("http:", "https:", "//"))], refs
    assert 'id="fig-per-day"' in html and "$0.01" in html  # 0.0075 this month
    for by in ("agent", "user", "prompt_version"):
        assert client_for(members[Role.FINANCE]).get(f"/t/acme/spend/?by={by}").status_code == 200


@pytest.mark.parametrize("query", ["?start=yesterday", "?start=2026-13-01", "?start=2026-02-01&end=2026-01-01",
                                   "?start=2000-01-01&end=2026-01-01", "?by=tenant", "?by=%00"])
def test_bad_filters_are_400(query, members, client_for, tenant):
    assert client_for(members[Role.FINANCE]).get("/t/acme/spend/" + query).status_code == 400


def test_export_streams_the_tenants_ledger_only(spent, members, client_for, other_tenant, tenant):
    from budgets.services import reservation_open as ro
    from runs.models import Agent, Run

    other_agent = Agent.objects.create(tenant=other_tenant, name="=HYPERLINK(\"x\")", system_prompt="x")
    other_run = Run.objects.create(tenant=other_tenant, agent=other_agent, input="x", status="running")
    reservation_settle(reservation=ro(run=other_run, model="claude-haiku-4-5", max_tokens=10, input_tokens_bound=10),
                       usage={"input_tokens": 5, "output_tokens": 5}, model="claude-haiku-4-5")
    resp = client_for(members[Role.FINANCE]).get("/t/acme/spend/export.csv")
    assert resp.status_code == 200 and resp.streaming
    rows = list(csv.reader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert rows[0][0] == "at" and len(rows) == 2
    assert rows[1][2] == "acme" and rows[1][-3] == "0.0075000000" and rows[1][-1] == "0"


def test_finance_of_b_cannot_export_a(spent, other_tenant, client_for):
    from tests.factories import MembershipFactory, UserFactory

    b_finance = MembershipFactory(tenant=other_tenant, role=Role.FINANCE, user=UserFactory(username="globex-fin")).user
    client = client_for(b_finance)
    assert client.get("/t/acme/spend/export.csv").status_code == 404
    assert client.get("/t/acme/spend/").status_code == 404
    # And their own export has none of A's rows.
    body = b"".join(client.get("/t/globex/spend/export.csv").streaming_content).decode()
    assert body.count("\n") == 1


def test_csv_cells_cannot_start_formulas(tenant, make_run, members, client_for):
    from runs.models import Agent

    evil = Agent.objects.create(tenant=tenant, name="=cmd|'/c calc'!A1", system_prompt="x")
    run = make_run(agent=evil)
    reservation_settle(reservation=reservation_open(run=run, model="claude-haiku-4-5", max_tokens=10, input_tokens_bound=10),
                       usage={"input_tokens": 1, "output_tokens": 1}, model="claude-haiku-4-5")
    body = b"".join(client_for(members[Role.FINANCE]).get("/t/acme/spend/export.csv").streaming_content).decode()
    assert "'=cmd" in body and ",=cmd" not in body


def test_operator_and_viewer_cannot_see_spend(members, client_for, tenant):
    for role in (Role.OPERATOR, Role.VIEWER, Role.PROMPT_EDITOR):
        assert client_for(members[role]).get("/t/acme/spend/").status_code == 403
        assert client_for(members[role]).get("/t/acme/spend/export.csv").status_code == 403


def test_the_caps_page_marks_only_caps_active_in_the_sidebar(members, client_for, tenant):
    resp = client_for(members[Role.ADMIN]).get("/t/acme/spend/caps/")
    assert [i["label"] for i in resp.context["nav_items"] if i["active"]] == ["Caps"]
    assert resp.content.count(b'aria-current="page"') == 1


def test_admin_lowers_tenant_caps_and_it_is_audited(members, client_for, tenant):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/spend/caps/", {
        "form": "tenant", "task_cost_cap": "1.50", "tenant_month_cost_cap": "300", "max_concurrent_runs": "3",
        "allowed_models": "claude-haiku-4-5, claude-sonnet-4-5",
    })
    assert resp.status_code == 302
    caps = TenantCaps.objects.get(tenant=tenant)
    assert caps.task_cost_cap == Decimal("1.5") and caps.user_day_cost_cap is None and caps.max_concurrent_runs == 3
    assert caps.allowed_models == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    ev = AuditEvent.objects.get(tenant=tenant, action="caps.tenant")
    assert Decimal(ev.after["task_cost_cap"]) == Decimal("1.5") and ev.actor == members[Role.ADMIN]


@pytest.mark.parametrize("field,value", [
    ("task_cost_cap", "-1"), ("task_cost_cap", "abc"), ("task_cost_cap", "1e30"), ("tenant_month_cost_cap", "NaN"),
    ("tenant_month_cost_cap", "Infinity"), ("tenant_month_cost_cap", "1000.01"), ("user_day_cost_cap", "20.0000000001"),
    ("max_concurrent_runs", "0"), ("max_concurrent_runs", "11"), ("max_concurrent_runs", "x"), ("allowed_models", "gpt'; drop"),
])
def test_bad_tenant_caps_are_refused_and_nothing_changes(field, value, members, client_for, tenant):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/spend/caps/", {"form": "tenant", field: value})
    assert resp.status_code == 400
    assert not TenantCaps.objects.filter(tenant=tenant).exists()
    assert not AuditEvent.objects.filter(tenant=tenant, action__startswith="caps.").exists()


def test_tier_model_list_bounds_the_tenant_list(members, client_for, tenant):
    tenant.tier.allowed_models = ["claude-haiku-4-5"]
    tenant.tier.save()
    resp = client_for(members[Role.ADMIN]).post("/t/acme/spend/caps/", {"form": "tenant", "allowed_models": "claude-opus-4-5"})
    assert resp.status_code == 400 and b"Not allowed by your tier" in resp.content


def test_user_cap_within_tier_is_saved_and_above_is_refused(members, client_for, tenant):
    admin = client_for(members[Role.ADMIN])
    op = members[Role.OPERATOR]
    assert admin.post("/t/acme/spend/caps/", {"form": "user", "user": op.pk, "user_day_cost_cap": "5"}).status_code == 302
    assert UserCap.objects.get(tenant=tenant, user=op).user_day_cost_cap == Decimal("5")
    resp = admin.post("/t/acme/spend/caps/", {"form": "user", "user": op.pk, "user_day_cost_cap": "25"})
    assert resp.status_code == 400 and b"tier" in resp.content
    assert UserCap.objects.get(tenant=tenant, user=op).user_day_cost_cap == Decimal("5")
    assert admin.post("/t/acme/spend/caps/", {"form": "user", "user": "abc"}).status_code == 400
    assert admin.post("/t/acme/spend/caps/", {"form": "nope"}).status_code == 400


def test_user_of_another_tenant_cannot_be_capped(members, client_for, outsider):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/spend/caps/", {"form": "user", "user": outsider.pk, "user_day_cost_cap": "1"})
    assert resp.status_code == 400
    assert not UserCap.objects.exists()


def test_finance_cannot_change_caps(members, client_for):
    assert client_for(members[Role.FINANCE]).post("/t/acme/spend/caps/", {"form": "tenant", "task_cost_cap": "1"}).status_code == 403
    assert not TenantCaps.objects.exists()


def test_estimate_is_saved_and_shown_beside_actuals(members, client_for, agent, tenant):
    admin = client_for(members[Role.ADMIN])
    resp = admin.post("/t/acme/spend/estimates/", {"agent": agent.pk, "input_tokens": 1000, "output_tokens": 200,
                                                   "tool_calls": 2, "tool_result_tokens": 500, "runs_per_day": 100})
    assert resp.status_code == 302
    est = AgentEstimate.objects.get(agent_id=agent.pk)
    from budgets.selectors import estimate_figures

    # calls: 3; input 1000 + 1700 + 2400 = 5100 at $3, output 600 at $15 -> (15300 + 9000) / 1e6
    assert estimate_figures(est, agent_model=agent.model)["per_run"] == Decimal("0.0243")
    assert estimate_figures(est, agent_model=agent.model)["per_month"] == Decimal("72.9")
    page = client_for(members[Role.FINANCE]).get("/t/acme/spend/estimates/")
    assert page.status_code == 200 and b"$0.02" in page.content and b"$72.90" in page.content


@pytest.mark.parametrize("data", [
    {"input_tokens": -1}, {"input_tokens": "many"}, {"runs_per_day": 10**12}, {"model": "claude-opus-5-5"}, {"agent": 999999},
])
def test_bad_estimates_are_refused(data, members, client_for, agent):
    base = {"agent": agent.pk, "input_tokens": 1000, "output_tokens": 200, "tool_calls": 0, "tool_result_tokens": 0, "runs_per_day": 1}
    resp = client_for(members[Role.ADMIN]).post("/t/acme/spend/estimates/", base | data)
    assert resp.status_code == 400
    assert not AgentEstimate.objects.exists()


def test_staff_view_is_for_staff_only(client_for, members, spent, admin_user):
    assert client_for(members[Role.FINANCE]).get("/staff/budgets/spend/").status_code in (302, 403)
    assert client_for(members[Role.ADMIN]).get("/staff/budgets/spend/").status_code in (302, 403)
    from django.test import Client

    assert Client().get("/staff/budgets/spend/").status_code == 302
    admin_user.is_staff = True
    admin_user.save()
    resp = client_for(admin_user).get("/staff/budgets/spend/?by=model")
    assert resp.status_code == 200 and b"Acme" in resp.content
    assert client_for(admin_user).get("/staff/budgets/spend/?start=bad").status_code == 400
    assert client_for(admin_user).post("/staff/budgets/spend/").status_code == 405


def test_home_panel_shows_spend_vs_cap(spent, members, client_for):
    html = client_for(members[Role.VIEWER]).get("/t/acme/").content.decode()
    assert "Spend this month vs cap" in html and "$0.0075" in html  # below a cent: more decimals


def test_spend_entries_are_append_only_in_admin(spent, admin_user, client_for):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    c = client_for(admin_user)
    assert c.get(f"/admin/budgets/spendentry/{spent.pk}/change/").status_code == 200
    assert c.post(f"/admin/budgets/spendentry/{spent.pk}/delete/", {"post": "yes"}).status_code == 403
    assert SpendEntry.objects.filter(pk=spent.pk).exists()
