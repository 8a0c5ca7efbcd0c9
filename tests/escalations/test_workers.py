"""Escalations end to end with real ``rqworker`` processes on PostgreSQL and Redis.

Approve → the tool runs once and the run completes; reject → the model sees the reason and the
run continues; expiry (scheduled by RQ's scheduler) → the policy's outcome; two clients
approving at the same moment → exactly one transition and one execution.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from agentops.escalations.models import Escalation
from agentops.escalations.notify import _schedule_expiry
from agentops.toolbox.models import Refund, SentEmail
from runs.models import Run, RunStatus, ToolCall
from runs.services import run_submit
from tenants.models import AuditEvent, Role
from tests.escalations.conftest import assert_log_consistent, tool_results
from tests.factories import PASSWORD
from tests.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CAPPED, RunStatus.CANCELLED)


def _submit(agent, scenario: str, user=None) -> Run:  # type: ignore[no-untyped-def]
    return run_submit(tenant=agent.tenant, agent=agent, input="Help the customer.", submitted_by=user, role=Role.OPERATOR,
                      metadata={"scenario": scenario})


def _status(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def _waiting(run: Run) -> Escalation:
    wait_for(lambda: _status(run) in (RunStatus.AWAITING_APPROVAL, *TERMINAL), timeout=60, message=f"run {run.pk} to wait for approval")
    run.refresh_from_db()
    assert run.status == RunStatus.AWAITING_APPROVAL, (run.status, run.outcome, run.error_type, run.error_message)
    return Escalation.objects.get(run=run, status="pending")


def _finished(run: Run) -> Run:
    wait_for(lambda: _status(run) in TERMINAL, timeout=60, message=f"run {run.pk} to finish")
    run.refresh_from_db()
    return run


def _api(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_approve_runs_the_tool_once_and_the_run_completes(agent, escalations_key):
    with workers(2):
        run = _submit(agent, "email_customer")
        esc = _waiting(run)
        assert SentEmail.objects.count() == 0
        resp = _api(escalations_key).post(f"/api/v1/escalations/{esc.pk}/decide", content_type="application/json",
                                          data=json.dumps({"decision": "approve", "arguments_sha256": esc.arguments_sha256}))
        assert resp.status_code == 200
        run = _finished(run)
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert SentEmail.objects.filter(run_id=run.pk).count() == 1
    assert ToolCall.objects.get(run=run, tool_use_id=esc.tool_use_id).status == "succeeded"
    assert_log_consistent(run)


def test_reject_the_model_sees_the_reason_and_the_run_continues(agent, members, client_for):
    agent.tenant.gate_irreversible_tools = False
    agent.tenant.save()
    with workers(2):
        run = _submit(agent, "refund_over_limit")
        esc = _waiting(run)
        assert "over the approval threshold" in esc.gate_reason
        resp = client_for(members[Role.OPERATOR]).post(
            f"/t/acme/escalations/{esc.pk}/decide/", {"decision": "reject", "comment": "Refunds over $100 need a manager.",
                                                       "arguments_sha256": esc.arguments_sha256}, HTTP_HX_REQUEST="true")
        assert resp.status_code == 200
        run = _finished(run)
    assert run.status == RunStatus.SUCCEEDED
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
    assert result["is_error"] and "Refunds over $100 need a manager." in result["content"]
    assert_log_consistent(run)


@pytest.mark.parametrize("policy", ["reject", "fail"])
def test_scheduled_expiry_applies_the_policy(agent, policy):
    with workers(2, ESCALATION_EXPIRY_POLICY=policy):
        run = _submit(agent, "email_customer")
        esc = _waiting(run)
        # Pretend the 24 h window is almost over and let RQ's scheduler fire the expiry job.
        Escalation.objects.filter(pk=esc.pk).update(expires_at=timezone.now() + timedelta(seconds=1))
        esc.refresh_from_db()
        _schedule_expiry(esc)
        wait_for(lambda: Escalation.objects.get(pk=esc.pk).status == "expired", timeout=30, message="the expiry job")
        run = _finished(run)
    assert SentEmail.objects.count() == 0
    assert AuditEvent.objects.filter(action="escalation.expired").count() == 1
    if policy == "reject":
        assert run.status == RunStatus.SUCCEEDED
        result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
        assert result["is_error"] and "approval_expired" in result["content"]
        assert_log_consistent(run)
    else:
        assert run.status == RunStatus.FAILED and run.outcome == "approval_expired"


def test_two_clients_approving_at_once_make_one_transition_and_one_execution(agent, members, escalations_key):
    runs = [_submit(agent, "email_customer") for _ in range(4)]
    with workers(2):
        escalations = [_waiting(r) for r in runs]
        outcomes: dict[int, list[int]] = {e.pk: [] for e in escalations}
        for esc in escalations:
            barrier = threading.Barrier(2)
            console = Client()
            assert console.login(username=members[Role.OPERATOR].username, password=PASSWORD)
            api = _api(escalations_key)

            def via_console(esc=esc, barrier=barrier, console=console) -> None:  # type: ignore[no-untyped-def]
                try:
                    barrier.wait()
                    resp = console.post(f"/t/acme/escalations/{esc.pk}/decide/", {"decision": "approve", "arguments_sha256": esc.arguments_sha256},
                                        HTTP_HX_REQUEST="true")
                    outcomes[esc.pk].append(resp.status_code)
                finally:
                    connection.close()

            def via_api(esc=esc, barrier=barrier, api=api) -> None:  # type: ignore[no-untyped-def]
                try:
                    barrier.wait()
                    resp = api.post(f"/api/v1/escalations/{esc.pk}/decide", content_type="application/json",
                                    data=json.dumps({"decision": "approve", "arguments_sha256": esc.arguments_sha256}))
                    outcomes[esc.pk].append(resp.status_code)
                finally:
                    connection.close()

            threads = [threading.Thread(target=via_console), threading.Thread(target=via_api)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
        finished = [_finished(r) for r in runs]
    for esc in escalations:
        assert sorted(outcomes[esc.pk]) == [200, 409], outcomes
        assert AuditEvent.objects.filter(action="escalation.approved", target_id=str(esc.pk)).count() == 1
    for run in finished:
        assert run.status == RunStatus.SUCCEEDED
        assert SentEmail.objects.filter(run_id=run.pk).count() == 1
        assert_log_consistent(run)
