"""The periodic-job list and its scheduler loop: intervals, errors that stop nothing, last runs."""

from __future__ import annotations

import json
from datetime import timedelta

import django_rq
import pytest
from django.db import OperationalError
from django.utils import timezone

from agentops.periodic import LAST_RUN_KEY, PeriodicJob, Scheduler, last_runs, periodic_jobs, retention_sweep
from tenants.models import WebhookDelivery


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_one_list_names_every_periodic_job():
    assert [j.name for j in periodic_jobs()] == [
        "reconcile_runs", "escalations_sweep", "reconcile_reservations", "budget_alerts", "evals_sweep", "flag_drift", "retention",
        "journal_purge"]
    assert all(j.every_s > 0 and j.what for j in periodic_jobs())


def test_each_job_keeps_its_interval_and_an_error_stops_neither_the_loop_nor_the_others():
    clock, calls = Clock(), []
    failures = [OperationalError("server closed the connection"), RuntimeError("a bug")]

    def flaky() -> dict[str, int]:
        calls.append(("flaky", clock.now))
        if failures:
            raise failures.pop(0)
        return {"done": 1}

    def steady() -> None:
        calls.append(("steady", clock.now))

    sched = Scheduler([PeriodicJob("flaky", flaky, 10, "x"), PeriodicJob("steady", steady, 5, "y")], clock=clock)
    assert sched.run_due() == ["flaky", "steady"]  # everything runs at start
    clock.now += 2.9
    assert sched.run_due() == []
    clock.now += 0.1  # a failed job is retried 3 s later, not after its whole interval
    assert sched.run_due() == ["flaky"]
    clock.now += 2
    assert sched.run_due() == ["steady"]
    clock.now += 1
    assert sched.run_due() == ["flaky"]  # third attempt succeeds
    clock.now += 9.9
    assert sched.run_due() == ["steady"]  # flaky is due at 16, ten seconds after its success
    assert [c for c in calls if c[0] == "flaky"][-1][1] == 1_800_000_006.0

    recorded = {k.decode(): json.loads(v) for k, v in django_rq.get_connection("default").hgetall(LAST_RUN_KEY).items()}
    assert recorded["flaky"]["ok"] is True and recorded["flaky"]["error"] == ""
    assert recorded["flaky"]["last_ok_at"].startswith("2027-01-15T08:00:06")
    assert recorded["steady"]["ok"] is True


def test_a_failed_run_is_recorded_with_its_error_class():
    clock = Clock()

    def down() -> None:
        raise OperationalError("connection refused")

    Scheduler([PeriodicJob("reconcile_runs", down, 15, "x")], clock=clock).run_due()
    recorded = json.loads(django_rq.get_connection("default").hget(LAST_RUN_KEY, "reconcile_runs"))
    assert recorded["ok"] is False and recorded["error"] == "OperationalError" and "last_ok_at" not in recorded
    assert last_runs()["reconcile_runs"]["seconds_since_ok"] is None


def test_stop_ends_the_loop_at_once():
    sched = Scheduler([PeriodicJob("noop", lambda: None, 3600, "x")])
    sched.sleep = lambda s: sched.stop.set()  # the first wait is interrupted by a stop request
    sched.forever()
    assert sched.stop.is_set()


@pytest.mark.django_db
def test_retention_deletes_old_finished_webhook_deliveries_only(tenant, settings):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    now = timezone.now()
    old = now - timedelta(days=31)
    gone = WebhookDelivery.objects.create(tenant=tenant, event="x", status=WebhookDelivery.DELIVERED, created_at=old)
    pending = WebhookDelivery.objects.create(tenant=tenant, event="x", status=WebhookDelivery.PENDING, created_at=old)
    recent = WebhookDelivery.objects.create(tenant=tenant, event="x", status=WebhookDelivery.FAILED, created_at=now)
    assert retention_sweep(now=now) == {"webhook_deliveries": 1, "queues_cleaned": 2}
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {pending.pk, recent.pk}
    assert not WebhookDelivery.objects.filter(pk=gone.pk).exists()
