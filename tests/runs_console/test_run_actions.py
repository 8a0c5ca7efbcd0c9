from __future__ import annotations

from runs.models import RunStatus
from tenants.models import AuditEvent, Role
from tests.runs_console.factories import AgentFactory, EscalationFactory, RunFactory, runs_url


def _queued(agent):  # type: ignore[no-untyped-def]
    return RunFactory(agent=agent, status=RunStatus.QUEUED, outcome="")


def test_cancel_stops_a_queued_run_and_its_pending_escalations(tenant, agent, members, client_for):
    run = _queued(agent)
    escalation = EscalationFactory(run=run)
    resp = client_for(members[Role.OPERATOR]).post(runs_url("cancel", run_id=run.pk))
    assert resp.status_code == 302 and resp["Location"] == runs_url("detail", run_id=run.pk)
    run.refresh_from_db()
    escalation.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and escalation.status == "cancelled"
    assert AuditEvent.objects.filter(tenant=tenant, action="run.cancel").count() == 1


def test_cancel_of_a_leased_run_is_requested_not_forced(agent, admin):
    run = RunFactory(agent=agent, status=RunStatus.RUNNING, outcome="", lease_owner="worker-1")
    admin.post(runs_url("cancel", run_id=run.pk))
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.cancel_requested
    assert "Cancel requested" in admin.get(runs_url("detail", run_id=run.pk)).content.decode()


def test_pause_then_resume(agent, admin, django_capture_on_commit_callbacks):
    run = _queued(agent)
    admin.post(runs_url("pause", run_id=run.pk))
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert admin.post(runs_url("resume", run_id=run.pk)).status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and len(callbacks) == 1  # re-enqueued after commit


def test_resuming_a_finished_run_is_a_409_with_the_page(agent, admin):
    run = RunFactory(agent=agent, status=RunStatus.SUCCEEDED)
    resp = admin.post(runs_url("resume", run_id=run.pk))
    assert resp.status_code == 409 and b"cannot be resumed" in resp.content
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_resume_under_a_kill_switch_is_refused(tenant, agent, admin):
    run = RunFactory(agent=agent, status=RunStatus.PAUSED)
    tenant.runs_disabled = True
    tenant.save()
    assert admin.post(runs_url("resume", run_id=run.pk)).status_code == 409
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED


def test_viewers_and_finance_cannot_act_on_runs(agent, members, client_for):
    run = _queued(agent)
    for role in (Role.VIEWER, Role.FINANCE, Role.PROMPT_EDITOR):
        client = client_for(members[role])
        for action in ("cancel", "pause", "resume"):
            assert client.post(runs_url(action, run_id=run.pk)).status_code == 403, (role, action)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_actions_are_post_only_and_scoped_to_the_tenant(agent, other_tenant, admin):
    run = _queued(agent)
    assert admin.get(runs_url("cancel", run_id=run.pk)).status_code == 405
    foreign = RunFactory(agent=AgentFactory(tenant=other_tenant), status=RunStatus.QUEUED)
    for action in ("cancel", "pause", "resume"):
        assert admin.post(runs_url(action, run_id=foreign.pk)).status_code == 404
        assert admin.post(f"/t/acme/runs/x{run.pk}/{action}/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == RunStatus.QUEUED
