"""Reserve / settle / release semantics, every cap scope, alerts and webhooks — on both the
PostgreSQL-function path and the portable Python path."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from budgets import services
from budgets.models import AgentEstimate, CapAlert, CapCounter, Reservation, SpendEntry, TenantCaps, UserCap
from budgets.services import (
    CostCapExceeded,
    ModelNotAllowed,
    UnknownModelPrice,
    effective_caps,
    reservation_open,
    reservation_release,
    reservation_settle,
)
from tenants.models import WebhookDelivery
from tests.budgets._workers import FULL_USAGE

# Cap windows are days and months: every test here runs on a frozen clock.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]
AMOUNT = Decimal("0.0075")  # worst case of (1000 in, 100 out) on claude-sonnet-4-5, and FULL_USAGE's exact cost


@pytest.fixture(params=["db_functions", "portable"], autouse=True)
def path(request, monkeypatch):
    monkeypatch.setattr(services, "USE_DB_FUNCTIONS", request.param == "db_functions")
    return request.param


def _open(run, **kw):
    return reservation_open(run=run, model=kw.pop("model", "claude-sonnet-4-5"), max_tokens=kw.pop("max_tokens", 100),
                            input_tokens_bound=kw.pop("input_tokens_bound", 1000))


def _counter(tenant, scope):
    return CapCounter.unscoped.get(tenant=tenant, scope=scope)


def test_reserve_settle_moves_money_from_reserved_to_spent(tenant, make_run):
    run = make_run()
    res = _open(run)
    assert res.amount == AMOUNT and res.status == "open"
    for scope in ("task", "user_day", "user_month", "tenant_month"):
        c = _counter(tenant, scope)
        assert (c.spent, c.reserved) == (0, AMOUNT)
    entry = reservation_settle(reservation=res, usage={"input_tokens": 100, "output_tokens": 10}, model="claude-sonnet-4-5-20250929")
    assert entry.cost == Decimal("0.00045")
    for scope in ("task", "user_day", "user_month", "tenant_month"):
        c = _counter(tenant, scope)
        assert (c.spent, c.reserved) == (Decimal("0.00045"), 0)
    run.refresh_from_db()
    assert (run.cost, run.input_tokens, run.output_tokens) == (Decimal("0.00045"), 100, 10)
    # Settling twice changes nothing and returns the same entry.
    again = reservation_settle(reservation=res, usage={"input_tokens": 100, "output_tokens": 10}, model="claude-sonnet-4-5")
    assert again.pk == entry.pk and SpendEntry.objects.count() == 1
    assert _counter(tenant, "tenant_month").spent == Decimal("0.00045")


def test_release_gives_everything_back_and_is_idempotent(tenant, make_run):
    res = _open(make_run())
    reservation_release(reservation=res)
    reservation_release(reservation=res)
    assert all(c.reserved == 0 and c.spent == 0 for c in CapCounter.unscoped.all())
    assert Reservation.unscoped.get(pk=res.pk).status == "released"
    assert not SpendEntry.objects.exists()


def test_settling_a_released_reservation_still_records_the_spend(tenant, make_run):
    res = _open(make_run())
    reservation_release(reservation=res)
    entry = reservation_settle(reservation=res, usage=FULL_USAGE, model="claude-sonnet-4-5")
    assert entry.cost == AMOUNT
    c = _counter(tenant, "tenant_month")
    assert (c.spent, c.reserved) == (AMOUNT, 0)


@pytest.mark.parametrize("scope,setup", [
    ("task", lambda t, u, a: TenantCaps.objects.create(tenant=t, task_cost_cap=AMOUNT * 2)),
    ("task", lambda t, u, a: (setattr(a, "task_cost_cap", AMOUNT * 2), a.save())),
    ("user_day", lambda t, u, a: UserCap.objects.create(tenant=t, user=u, user_day_cost_cap=AMOUNT * 2)),
    ("user_month", lambda t, u, a: TenantCaps.objects.create(tenant=t, user_month_cost_cap=AMOUNT * 2)),
    ("tenant_month", lambda t, u, a: TenantCaps.objects.create(tenant=t, tenant_month_cost_cap=AMOUNT * 2)),
])
def test_each_scope_refuses_the_call_that_would_pass_it(scope, setup, tenant, make_run, members, agent):
    setup(tenant, members["operator"], agent)
    run = make_run()
    a, b = _open(run), _open(run)
    with pytest.raises(CostCapExceeded) as exc:
        _open(run)
    assert exc.value.scope == scope and exc.value.limit == AMOUNT * 2 and exc.value.needed == AMOUNT
    assert exc.value.available == 0
    # Nothing was held by the refused call, on any counter.
    assert all(c.reserved == AMOUNT * 2 for c in CapCounter.unscoped.all())
    assert Reservation.unscoped.count() == 2
    # Releasing one makes room again.
    reservation_release(reservation=a)
    _open(run)
    reservation_settle(reservation=b, usage=FULL_USAGE, model="claude-sonnet-4-5")
    assert CapAlert.objects.filter(scope=scope, kind="100").count() == 1


def test_a_call_bigger_than_the_whole_cap_is_refused(tenant, make_run):
    TenantCaps.objects.create(tenant=tenant, task_cost_cap=Decimal("0.001"))
    with pytest.raises(CostCapExceeded) as exc:
        _open(make_run())
    assert exc.value.scope == "task" and exc.value.available == Decimal("0.001")


def test_api_key_runs_charge_the_keys_creator(tenant, make_run, members, admin_user):
    from tenants.services import api_key_create

    key, _ = api_key_create(tenant=tenant, actor=admin_user, name="ci", scopes=["runs"])
    UserCap.objects.create(tenant=tenant, user=admin_user, user_day_cost_cap=AMOUNT)
    run = make_run(submitted_by=None, api_key=key)
    res = _open(run)
    assert res.user_id == admin_user.pk
    with pytest.raises(CostCapExceeded) as exc:
        _open(run)
    assert exc.value.scope == "user_day"


def test_runs_without_any_user_skip_user_caps(tenant, make_run):
    res = _open(make_run(submitted_by=None))
    assert res.user_id is None
    assert set(CapCounter.unscoped.values_list("scope", flat=True)) == {"task", "tenant_month"}


def test_unknown_and_disallowed_models_are_refused_before_anything_is_held(tenant, make_run):
    run = make_run()
    with pytest.raises(UnknownModelPrice) as exc:
        _open(run, model="claude-opus-5-5")
    assert "claude-opus-5-5" in str(exc.value) and exc.value.model == "claude-opus-5-5"
    TenantCaps.objects.create(tenant=tenant, allowed_models=["claude-haiku-4-5"])
    with pytest.raises(ModelNotAllowed):
        _open(run, model="claude-sonnet-4-5")
    _open(run, model="claude-haiku-4-5-20251001")  # a dated id of an allowed family
    assert Reservation.unscoped.count() == 1


@pytest.mark.parametrize("kw", [{"max_tokens": -1}, {"max_tokens": "10"}, {"input_tokens_bound": 10**9}, {"max_tokens": True}])
def test_bad_reservation_arguments_are_refused(kw, make_run):
    with pytest.raises(ValueError):
        _open(make_run(), **kw)


def test_effective_caps_layers(tenant, members, agent):
    op = members["operator"]
    assert effective_caps(tenant=tenant) == {"task": 5, "user_day": 20, "user_month": 200, "tenant_month": 1000}
    TenantCaps.objects.create(tenant=tenant, task_cost_cap=Decimal("2"), user_day_cost_cap=Decimal("10"))
    UserCap.objects.create(tenant=tenant, user=op, user_day_cost_cap=Decimal("3"))
    agent.task_cost_cap = Decimal("0.5")
    agent.save()
    assert effective_caps(tenant=tenant, user=op, agent=agent) == {"task": Decimal("0.5"), "user_day": 3, "user_month": 200, "tenant_month": 1000}
    assert effective_caps(tenant=tenant, user=members["viewer"])["user_day"] == 10


def test_alerts_fire_once_per_window_at_80_and_100(tenant, make_run):
    TenantCaps.objects.create(tenant=tenant, tenant_month_cost_cap=AMOUNT * 5)
    run = make_run()
    for _ in range(3):
        reservation_settle(reservation=_open(run), usage=FULL_USAGE, model="claude-sonnet-4-5")
    assert not CapAlert.objects.exists()  # 60%
    reservation_settle(reservation=_open(run), usage=FULL_USAGE, model="claude-sonnet-4-5")  # 80%
    assert list(CapAlert.objects.values_list("kind", "scope")) == [("80", "tenant_month")]
    reservation_settle(reservation=_open(run), usage=FULL_USAGE, model="claude-sonnet-4-5")  # 100%
    with pytest.raises(CostCapExceeded):
        _open(run)
    assert sorted(CapAlert.objects.values_list("kind", flat=True)) == ["100", "80"]
    assert WebhookDelivery.objects.filter(tenant=tenant).count() == 2  # no URL: recorded as skipped
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"skipped"}


@pytest.mark.parametrize("at", ["00:00:00", "23:59:59"])
@pytest.mark.parametrize(
    "day,days_in_month,alert",
    [
        (date(2026, 11, 1), 30, True),  # the first: one day's spend x 30
        (date(2026, 11, 22), 30, True),  # $0.0075 / 22 x 30 = $0.0102 > $0.01
        (date(2026, 11, 23), 30, False),  # $0.0075 / 23 x 30 = $0.0098
        (date(2026, 11, 30), 30, False),  # the last: the projection is the spend itself
        (date(2026, 12, 31), 31, False),
        (date(2026, 2, 1), 28, True),
        (date(2026, 2, 28), 28, False),
        (date(2028, 2, 29), 29, False),  # a leap day, the last of its month
    ],
)
def test_projection_alert(tenant, make_run, clock, day, days_in_month, alert, at):
    from budgets.services import projection_check, projection_for

    clock.move_to(datetime.fromisoformat(f"{day.isoformat()}T{at}+00:00"))
    TenantCaps.objects.create(tenant=tenant, tenant_month_cost_cap=Decimal("0.01"))
    reservation_settle(reservation=_open(make_run()), usage=FULL_USAGE, model="claude-sonnet-4-5")
    projection = projection_for(tenant=tenant)
    assert projection["spent"] == AMOUNT
    assert projection["projected"] == (AMOUNT / day.day * days_in_month).quantize(Decimal("0.0001"))
    found = projection_check(tenant=tenant)
    if alert:
        assert found is not None and found.kind == "projection" and found.window_start == day.replace(day=1)
        assert projection_check(tenant=tenant) is None  # once per month
    else:
        assert found is None and not CapAlert.objects.filter(kind="projection").exists()


def test_drift_alert_when_actual_cost_per_run_is_off_by_more_than_20_percent(tenant, make_run, agent):
    from django.utils import timezone

    from budgets.services import drift_check

    AgentEstimate.objects.create(tenant=tenant, agent_id=agent.pk, input_tokens=1000, output_tokens=100, runs_per_day=10)
    # estimate: 1000*3 + 100*15 = $0.0045 per run; actual: $0.0075 (+67%)
    yesterday = timezone.now() - timedelta(days=1)
    run = make_run(created_at=yesterday)
    reservation_settle(reservation=_open(run), usage=FULL_USAGE, model="claude-sonnet-4-5")
    alerts = drift_check(tenant=tenant, day=yesterday.date())
    assert len(alerts) == 1 and "+67%" in alerts[0].message
    assert drift_check(tenant=tenant, day=yesterday.date()) == []


class _Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((dict(self.headers), body))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(500)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_is_signed_slack_compatible_and_retried(tenant, hook_server, path, settings):
    # Runs under both reservation paths (the module's parametrisation); webhooks use neither.
    from standardwebhooks.webhooks import Webhook

    from tenants.services import webhook_endpoint_create
    from tenants.webhooks import webhook_deliver, webhook_send

    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = ["127.0.0.1/32"]  # the test receiver; see tests/tenants/test_webhooks.py
    endpoint, secret = webhook_endpoint_create(tenant=tenant, actor=None, url=hook_server)
    _Hook.fail_first = 2
    [delivery] = webhook_send(tenant=tenant, event="budget.threshold", payload={"text": "Acme at 80%", "scope": "tenant_month"})
    assert webhook_deliver(delivery.pk, sleep=lambda s: None) == "delivered"
    delivery.refresh_from_db()
    assert delivery.attempts == 3 and delivery.status == "delivered" and delivery.response_status == 204
    headers, body = _Hook.received[-1]
    assert json.loads(body)["text"] == "Acme at 80%"
    assert Webhook(secret).verify(body, headers)["scope"] == "tenant_month"
    # Every retry of one delivery carries the same webhook-id.
    assert {h["webhook-id"] for h, _ in _Hook.received} == {f"msg_{delivery.pk}"}
    # A dead endpoint ends as failed with the error recorded.
    endpoint.url = "http://127.0.0.1:9/nothing"
    endpoint.save()
    [d2] = webhook_send(tenant=tenant, event="budget.threshold", payload={})
    assert webhook_deliver(d2.pk, sleep=lambda s: None) == "failed"
    d2.refresh_from_db()
    assert d2.attempts == 4 and d2.last_error and d2.payload["text"]
