"""Cancel takes effect at once when no worker holds the run: while it waits out a reschedule
backoff, when a cancel arrives during the call that exhausts its retries, or after its worker died.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agentops.harness import lease
from agentops.harness.loop import drive_run
from budgets.models import Reservation, ReservationStatus, SpendEntry
from runs.models import Message, Run, RunEvent, RunStatus
from runs.services import run_cancel
from tenants.models import AuditEvent
from tests.runtime.conftest import assert_log_consistent, make_run


@pytest.fixture
def no_fallback(agent):  # type: ignore[no-untyped-def]
    # With a fallback model an overload is absorbed by the fallback; these runs must reschedule.
    agent.fallback_model = ""
    agent.save()
    return agent


def _scheduled_job_ids() -> list[str]:
    import django_rq
    from rq.registry import ScheduledJobRegistry

    return ScheduledJobRegistry(queue=django_rq.get_queue("runs")).get_job_ids()


@pytest.mark.django_db
def test_cancelling_a_rescheduled_run_takes_effect_at_once_and_its_scheduled_job_does_nothing(
    no_fallback, client, django_capture_on_commit_callbacks
):
    from tenants.services import api_key_create

    run = make_run(no_fallback, "outage")
    with django_capture_on_commit_callbacks(execute=True):
        assert drive_run(run.pk, worker_id="w") == "rescheduled"
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.not_before > timezone.now() + timedelta(seconds=3)
    assert len(_scheduled_job_ids()) == 1, "the reschedule left a job in RQ's scheduled registry"

    key = api_key_create(tenant=run.tenant, actor=None, name="k", scopes=["runs"])[1]
    t0 = time.monotonic()
    resp = client.post(f"/api/v1/runs/{run.pk}/cancel", data="{}", content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key}")
    assert time.monotonic() - t0 < 2
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled", resp.content
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.outcome == "cancelled" and run.finished_at is not None
    assert run.not_before is None and run.lease_owner == ""
    assert not Reservation.objects.filter(run_id=run.pk, status=ReservationStatus.OPEN).exists()
    assert AuditEvent.objects.filter(tenant=run.tenant, action="run.cancel").count() == 1
    assert RunEvent.objects.filter(run=run, type="status", data__status="cancelled").count() == 1

    # The job RQ still holds fires after the backoff: it finds the run terminal and does nothing.
    Run.objects.filter(pk=run.pk).update(not_before=None)  # as if the backoff had passed
    messages = Message.objects.filter(run=run).count()
    assert drive_run(run.pk, worker_id="w") == "not_leased"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and Message.objects.filter(run=run).count() == messages
    assert SpendEntry.objects.filter(run_id=run.pk).count() == 0
    assert_log_consistent(run)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_during_the_call_that_exhausts_retries_stops_the_run_instead_of_rescheduling_it(no_fallback, tmp_path, settings):
    settings.ANTHROPIC_MAX_RETRIES = 0
    scenario = tmp_path / "slow_outage.json"
    scenario.write_text(json.dumps({"steps": [{
        "delay_ms": 1500, "errors_every_attempt": {"status": 529, "retry_after_ms": 1},
        "content": [{"type": "text", "text": "never"}],
    }]}))
    run = make_run(no_fallback, str(scenario))
    outcome: list[str] = []

    def work() -> None:
        try:
            outcome.append(drive_run(run.pk, worker_id="w"))
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, iterations=0, messages__seq=0).exists():
            assert time.monotonic() < deadline, "the run never reached its model call"
            time.sleep(0.05)
        time.sleep(0.3)  # the call is in flight
        cancelled = run_cancel(run=run)
        assert cancelled.status == RunStatus.RUNNING and cancelled.cancel_requested  # a worker holds it
    finally:
        worker.join(timeout=30)
    assert outcome == ["cancelled"]
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.reschedules == 0 and run.not_before is None
    assert not RunEvent.objects.filter(run=run, type="rescheduled").exists()
    assert not Reservation.objects.filter(run_id=run.pk, status=ReservationStatus.OPEN).exists()
    assert _scheduled_job_ids() == [] and drive_run(run.pk, worker_id="w2") == "not_leased"
    assert_log_consistent(run)


@pytest.mark.django_db
def test_cancelling_a_run_whose_worker_died_takes_effect_at_once(agent):
    from budgets.services import reservation_open

    run = make_run(agent, "support_refund")
    # The worker died after the model asked for a tool and before it answered.
    Message.objects.create(tenant=run.tenant, run=run, seq=0, role="user", content=[{"type": "text", "text": run.input}])
    Message.objects.create(tenant=run.tenant, run=run, seq=1, role="assistant", content=[
        {"type": "tool_use", "id": "toolu_dead", "name": "lookup_account", "input": {"account_id": "ACC-1001"}}])
    assert lease.acquire(run.pk, "dead-worker") is not None
    reservation_open(run=run, model="claude-sonnet-4-6", max_tokens=512, input_tokens_bound=1000)
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))  # it stopped renewing

    run = run_cancel(run=run)
    assert run.status == RunStatus.CANCELLED and run.lease_owner == ""
    assert_log_consistent(run)  # its tool_use is answered: "not executed, the run was cancelled"
    last = run.messages.order_by("-seq").first()
    assert json.loads(last.content[0]["content"])["error"]["type"] == "run_cancelled"
    # Its reservation is reconciled now (no call was logged: released), not at the next sweep.
    assert not Reservation.objects.filter(run_id=run.pk, status=ReservationStatus.OPEN).exists()
    # Were the dead worker only slow, its next write is fenced out.
    with pytest.raises(lease.LeaseLost):
        lease.fence(run.pk, "dead-worker")


@pytest.mark.django_db
def test_a_run_a_live_worker_holds_is_only_asked_to_cancel(agent):
    run = make_run(agent, "default")
    assert lease.acquire(run.pk, "live-worker") is not None
    run = run_cancel(run=run)
    assert run.status == RunStatus.RUNNING and run.cancel_requested
    assert drive_run(run.pk, worker_id="live-worker") == RunStatus.CANCELLED
