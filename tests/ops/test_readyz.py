"""/readyz: the status is public; errors, workers, queues and periodic last runs are not."""

from __future__ import annotations

import pytest

from agentops.periodic import PeriodicJob, Scheduler
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_public_sees_the_status_only(client, settings):
    settings.READYZ_TOKEN = "s3cret-token"
    body = client.get("/readyz").json()
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert client.get("/readyz", HTTP_AUTHORIZATION="Bearer wrong").json() == body


def test_a_signed_in_non_staff_user_sees_the_status_only(client):
    client.force_login(UserFactory(username="plain"))
    assert set(client.get("/readyz").json()) == {"status", "checks"}


def test_without_a_configured_token_no_bearer_sees_details(client, settings):
    settings.READYZ_TOKEN = ""
    assert set(client.get("/readyz", HTTP_AUTHORIZATION="Bearer ").json()) == {"status", "checks"}


@pytest.mark.django_db(transaction=True)  # the scheduler closes connections between jobs, as in production
def test_the_token_shows_workers_queues_and_when_each_periodic_job_last_ran(client, settings):
    settings.READYZ_TOKEN = "s3cret-token"
    Scheduler([PeriodicJob("reconcile_runs", lambda: None, 15, "x")]).run_due()
    body = client.get("/readyz", HTTP_AUTHORIZATION="Bearer s3cret-token").json()
    assert body["errors"] == {}
    assert set(body["workers"]) == {"alive", "busy", "queues"}
    assert set(body["periodic"]) == {"reconcile_runs", "escalations_sweep", "reconcile_reservations", "budget_alerts", "evals_sweep", "flag_drift", "journal_purge", "retention"}
    ran = body["periodic"]["reconcile_runs"]
    assert ran["last_run"]["ok"] is True and 0 <= ran["seconds_since_ok"] < 60
    assert body["periodic"]["retention"]["last_run"] is None  # never ran: a monitor sees it


def test_staff_see_the_details(client):
    client.force_login(UserFactory(username="ops", is_staff=True))
    assert {"errors", "workers", "periodic"} <= set(client.get("/readyz").json())
