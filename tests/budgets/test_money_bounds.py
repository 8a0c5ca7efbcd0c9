"""Money and side effects: caps bounded by the tier everywhere, a fallback reserved for the
dearer model, and calls cut off by a crash charged at their worst case — on both the
PostgreSQL-function path and the portable path."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from budgets import services
from budgets.models import CapCounter, Reservation, SpendEntry, TenantCaps, UserCap
from budgets.pricing import price_for, worst_case_cost
from budgets.services import (
    CostCapExceeded,
    ModelNotAllowed,
    effective_caps,
    effective_policy,
    reconcile_reservations,
    reservation_open,
    reservation_settle,
    reservation_settle_unknown,
)
from runs.forms import AgentForm
from runs.models import Agent, RunStatus
from runs.services import agent_save

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["db_functions", "portable"], autouse=True)
def path(request, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(services, "USE_DB_FUNCTIONS", request.param == "db_functions")
    return request.param


@pytest.fixture
def tier(tenant):  # type: ignore[no-untyped-def]
    tier = tenant.tier
    tier.task_cost_cap, tier.user_day_cost_cap = Decimal("1"), Decimal("5")
    tier.user_month_cost_cap, tier.tenant_month_cost_cap = Decimal("50"), Decimal("100")
    tier.max_concurrent_runs, tier.allowed_models = 4, []
    tier.save()
    return tier


# --- tier bounds ----------------------------------------------------------------------------------


def test_an_agent_task_cap_above_the_tier_is_refused_by_the_service_and_the_model(tenant, tier, members):
    with pytest.raises(ValidationError) as err:
        agent_save(tenant=tenant, actor=members["admin"], data={
            "name": "big", "system_prompt": "p", "model": "claude-sonnet-4-5", "task_cost_cap": Decimal("99999")})
    assert "task_cost_cap" in err.value.message_dict
    assert not Agent.objects.filter(name="big").exists()
    agent = Agent(tenant=tenant, name="x", system_prompt="p", model="claude-sonnet-4-5", task_cost_cap=Decimal("1.5"))
    with pytest.raises(ValidationError):
        agent.full_clean()  # what the Django admin runs
    agent.task_cost_cap = Decimal("1")
    agent.full_clean()


def test_the_agent_form_refuses_a_task_cap_above_the_tier(tenant, tier):
    form = AgentForm(data={"name": "a", "system_prompt": "p", "model": "claude-sonnet-4-5", "max_tokens": 100,
                           "iteration_cap": 5, "repetition_threshold": 3, "wall_clock_limit_s": 60, "task_cost_cap": "99999"},
                     tenant=tenant)
    assert not form.is_valid()
    assert "tier" in str(form.errors["task_cost_cap"])


def test_tenant_and_user_overrides_above_the_tier_are_refused_by_model_clean(tenant, tier, members):
    caps = TenantCaps(tenant=tenant, task_cost_cap=Decimal("2"), max_concurrent_runs=10)
    with pytest.raises(ValidationError) as err:
        caps.full_clean()
    assert set(err.value.message_dict) == {"task_cost_cap", "max_concurrent_runs"}
    with pytest.raises(ValidationError):
        UserCap(tenant=tenant, user=members["operator"], user_day_cost_cap=Decimal("6")).full_clean()
    with pytest.raises(ValidationError):
        services.tenant_caps_set(tenant=tenant, actor=members["admin"], values={"user_month_cost_cap": Decimal("51")})


def test_old_rows_above_the_tier_are_clamped_when_the_policy_is_read(tenant, tier, members, path):
    """Rows written before the bounds (or by SQL) cannot lift a cap past the tier: the reserve
    path and the displayed policy both clamp."""
    agent = Agent.objects.create(tenant=tenant, name="old", system_prompt="p", model="claude-sonnet-4-5", task_cost_cap=Decimal("99999"))
    TenantCaps.objects.create(tenant=tenant, tenant_month_cost_cap=Decimal("5000"), max_concurrent_runs=500)
    UserCap.objects.create(tenant=tenant, user=members["operator"], user_day_cost_cap=Decimal("900"))
    caps = effective_caps(tenant=tenant, user=members["operator"], agent=agent)
    assert caps == {"task": Decimal("1"), "user_day": Decimal("5"), "user_month": Decimal("50"), "tenant_month": Decimal("100")}
    assert effective_policy(tenant=tenant).max_concurrent_runs == 4
    from runs.models import Run

    run = Run.objects.create(tenant=tenant, agent=agent, submitted_by=members["operator"], input="x", status=RunStatus.RUNNING)
    # 0.6 fits the tier's $1 task cap once; the second would pass the stored 99999 but not the tier.
    big = 150_000  # × $3/MTok input (1h write $6) + 0 out ≈ $0.90
    reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=1, input_tokens_bound=big)
    with pytest.raises(CostCapExceeded) as exc:
        reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=1, input_tokens_bound=big)
    assert exc.value.scope == "task" and exc.value.limit == Decimal("1")


def test_a_tenant_model_list_cannot_widen_the_tier_list(tenant, tier, make_run, path):
    tier.allowed_models = ["claude-haiku-4-5"]
    tier.save()
    TenantCaps.objects.create(tenant=tenant, allowed_models=[])  # [] used to mean "every model"
    with pytest.raises(ModelNotAllowed):
        reservation_open(run=make_run(), model="claude-opus-4-5", max_tokens=10, input_tokens_bound=10)
    reservation_open(run=make_run(), model="claude-haiku-4-5", max_tokens=10, input_tokens_bound=10)


# --- fallback -------------------------------------------------------------------------------------


def test_a_fallback_is_reserved_at_the_dearer_model(tenant, tier, make_run, path):
    run = make_run()
    res = reservation_open(run=run, model="claude-haiku-4-5", fallback_model="claude-opus-4-5", max_tokens=1000, input_tokens_bound=2000)
    opus = worst_case_cost(price_for("claude-opus-4-5"), input_tokens_bound=2000, max_tokens=1000)
    haiku = worst_case_cost(price_for("claude-haiku-4-5"), input_tokens_bound=2000, max_tokens=1000)
    assert opus > haiku
    assert Reservation.unscoped.get(pk=res.pk).amount == opus
    assert CapCounter.unscoped.get(tenant=tenant, scope="task", subject_id=run.pk).reserved == opus


def test_a_fallback_that_would_pass_the_task_cap_is_refused_before_the_call(tenant, tier, make_run, path):
    tier.task_cost_cap = Decimal("0.01")
    tier.save()
    run = make_run()
    # Haiku alone fits ($0.0080), Opus (the fallback) does not.
    reservation_open(run=make_run(), model="claude-haiku-4-5", max_tokens=1024, input_tokens_bound=1450)
    with pytest.raises(CostCapExceeded) as exc:
        reservation_open(run=run, model="claude-haiku-4-5", fallback_model="claude-opus-4-5", max_tokens=1024, input_tokens_bound=1450)
    assert exc.value.scope == "task"
    assert not Reservation.unscoped.filter(run_id=run.pk).exists()


def test_a_fallback_outside_the_allowed_models_is_refused(tenant, tier, make_run, path):
    tier.allowed_models = ["claude-haiku-4-5"]
    tier.save()
    with pytest.raises(ModelNotAllowed) as exc:
        reservation_open(run=make_run(), model="claude-haiku-4-5", fallback_model="claude-opus-4-5", max_tokens=10, input_tokens_bound=10)
    assert exc.value.model == "claude-opus-4-5"


# --- unknown outcome ------------------------------------------------------------------------------


def test_an_unknown_outcome_is_charged_at_the_worst_case_and_flagged(tenant, tier, make_run, path):
    run = make_run()  # "running" with no lease: its worker is gone
    res = reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    out = reconcile_reservations()
    assert out == {"checked": 1, "settled": 0, "unknown_outcome": 1}
    entry = SpendEntry.unscoped.get(reservation_id=res.pk)
    assert entry.unknown_outcome is True
    assert entry.cost == res.amount > 0 and entry.model == "claude-sonnet-4-5"
    assert Reservation.unscoped.get(pk=res.pk).status == "settled"
    for scope in ("task", "user_day", "user_month", "tenant_month"):
        counter = CapCounter.unscoped.get(tenant=tenant, scope=scope)
        assert (counter.spent, counter.reserved) == (res.amount, 0), scope
    run.refresh_from_db()
    assert run.cost == res.amount
    # Idempotent, and a late settle by the worker keeps the (higher) worst-case entry.
    assert reservation_settle_unknown(reservation=res).pk == entry.pk
    assert reservation_settle(reservation=res, usage={"input_tokens": 10, "output_tokens": 1}, model="claude-sonnet-4-5").pk == entry.pk
    assert SpendEntry.unscoped.filter(run_id=run.pk).count() == 1


def test_a_settled_call_is_never_flagged(tenant, tier, make_run, path):
    run = make_run()
    res = reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    reservation_settle(reservation=res, usage={"input_tokens": 10, "output_tokens": 1}, model="claude-sonnet-4-5")
    assert reservation_settle_unknown(reservation=res).unknown_outcome is False
    assert not SpendEntry.unscoped.filter(unknown_outcome=True).exists()


def test_finance_sees_unknown_outcomes_on_the_spend_page_and_in_the_csv(tenant, tier, make_run, members, client, path):
    run = make_run()
    res = reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000)
    reconcile_reservations()
    client.force_login(members["finance"])
    page = client.get(reverse("budgets:spend", args=[tenant.slug]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Flagged for finance" in body and f"#{run.pk}" in body
    resp = client.get(reverse("budgets:export", args=[tenant.slug]))
    rows = list(csv.DictReader(io.StringIO(b"".join(resp.streaming_content).decode())))
    assert [(r["run_id"], r["unknown_outcome"], Decimal(r["cost_usd"])) for r in rows] == [(str(run.pk), "1", res.amount)]
