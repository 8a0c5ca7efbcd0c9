"""Deciding escalations through the service, with the harness driven in-process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from agentops.escalations.models import Escalation
from agentops.escalations.services import (
    AlreadyDecided,
    ArgumentsMismatch,
    escalation_decide,
    escalation_expire,
    escalations_sweep,
)
from agentops.toolbox.models import Refund, SentEmail
from runs.models import Message, Run, RunStatus, ToolCall
from runs.services import run_cancel
from tenants.models import AuditEvent, Role, WebhookDelivery, WebhookEndpoint
from tests.escalations.conftest import assert_log_consistent, drive, gated, tool_results

pytestmark = pytest.mark.django_db


def _decide(esc: Escalation, decision: str, *, comment: str = "", actor=None, sha: str | None = "same", capture=None):  # type: ignore[no-untyped-def]
    return escalation_decide(
        escalation_id=esc.pk, tenant=esc.tenant, decision=decision, comment=comment, actor=actor,
        arguments_sha256=esc.arguments_sha256 if sha == "same" else sha,
    )


def test_a_gated_call_waits_with_nothing_executed(agent):
    esc = gated(agent, "email_customer")
    assert esc.kind == "tool_call" and esc.tool_name == "send_email" and esc.grant.requires_approval
    assert "requires approval" in esc.gate_reason
    assert SentEmail.objects.count() == 0
    assert ToolCall.objects.get(run=esc.run, tool_use_id=esc.tool_use_id).status == "gated"


def test_approve_executes_exactly_once_and_the_run_completes(agent, members, django_capture_on_commit_callbacks):
    esc = gated(agent, "email_customer")
    operator = members[Role.OPERATOR]
    with django_capture_on_commit_callbacks(execute=True):
        decided = _decide(esc, "approve", comment="fine", actor=operator)
    assert decided.status == "approved" and decided.decided_by == operator and decided.decided_at
    run = Run.objects.get(pk=esc.run_id)
    assert run.status == RunStatus.QUEUED  # resumed, waiting for a worker
    run = drive(run)
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert SentEmail.objects.filter(run_id=run.pk).count() == 1
    # Driving again (a duplicate job) repeats nothing.
    drive(run)
    assert SentEmail.objects.filter(run_id=run.pk).count() == 1
    assert_log_consistent(run)
    audit = AuditEvent.objects.get(action="escalation.approved")
    assert audit.actor == operator and audit.target_id == str(esc.pk)
    assert audit.after["run_id"] == run.pk and audit.after["grant_id"] == esc.grant_id and audit.after["comment"] == "fine"


def test_reject_sends_the_reason_to_the_model_and_the_run_continues(agent, members, django_capture_on_commit_callbacks):
    esc = gated(agent, "refund_over_limit")
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "reject", comment="Over policy: refunds above $100 need a manager.", actor=members[Role.ADMIN])
    run = drive(Run.objects.get(pk=esc.run_id))
    assert run.status == RunStatus.SUCCEEDED
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
    assert result["is_error"] is True
    body = json.loads(result["content"])
    assert body["error"]["type"] == "approval_rejected"
    assert "Over policy: refunds above $100 need a manager." in body["error"]["message"]
    assert_log_consistent(run)


def test_reject_needs_a_reason_and_decision_must_be_known(agent):
    esc = gated(agent)
    with pytest.raises(ValidationError):
        _decide(esc, "reject", comment="   ")
    with pytest.raises(ValidationError):
        _decide(esc, "maybe", comment="x")
    with pytest.raises(ValidationError):
        _decide(esc, "approve", comment="a\x00b")
    esc.refresh_from_db()
    assert esc.status == "pending"


def test_second_decision_and_replayed_approval_change_nothing(agent, members, django_capture_on_commit_callbacks):
    esc = gated(agent)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "approve", actor=members[Role.OPERATOR])
    with pytest.raises(AlreadyDecided) as exc:
        _decide(esc, "reject", comment="no", actor=members[Role.ADMIN])
    assert "already decided: approved by acme-operator" in str(exc.value)
    with pytest.raises(AlreadyDecided):
        _decide(esc, "approve", actor=members[Role.OPERATOR])  # the same POST, replayed
    esc.refresh_from_db()
    assert esc.status == "approved" and esc.decided_by == members[Role.OPERATOR]
    assert AuditEvent.objects.filter(action__startswith="escalation.").count() == 1


def test_another_tenants_escalation_is_not_found(agent, other_tenant):
    esc = gated(agent)
    with pytest.raises(Escalation.DoesNotExist):
        escalation_decide(escalation_id=esc.pk, tenant=other_tenant, decision="approve", comment="", arguments_sha256=esc.arguments_sha256)


def test_approving_with_another_hash_is_refused(agent):
    esc = gated(agent)
    with pytest.raises(ArgumentsMismatch):
        _decide(esc, "approve", sha="0" * 64)
    with pytest.raises(ArgumentsMismatch):
        _decide(esc, "approve", sha="")
    esc.refresh_from_db()
    assert esc.status == "pending"


def test_arguments_edited_in_the_escalation_row_are_refused(agent):
    esc = gated(agent)
    Escalation.objects.filter(pk=esc.pk).update(arguments={**esc.arguments, "to": "attacker@evil.example"})
    esc.refresh_from_db()
    with pytest.raises(ArgumentsMismatch, match="stored arguments changed"):
        _decide(esc, "approve")


def test_arguments_edited_in_the_message_log_are_refused(agent):
    esc = gated(agent)
    msg = next(m for m in Message.objects.filter(run=esc.run, role="assistant") if any(b.get("id") == esc.tool_use_id for b in m.content))
    msg.content = [{**b, "input": {**b["input"], "to": "attacker@evil.example"}} if b.get("id") == esc.tool_use_id else b for b in msg.content]
    msg.save()
    with pytest.raises(ArgumentsMismatch, match="logged tool call"):
        _decide(esc, "approve")


def test_arguments_changed_after_approval_are_not_executed(agent, django_capture_on_commit_callbacks):
    esc = gated(agent)
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "approve")
    # Tamper with the log between the approval and the worker picking the run up.
    msg = next(m for m in Message.objects.filter(run=esc.run, role="assistant") if any(b.get("id") == esc.tool_use_id for b in m.content))
    msg.content = [{**b, "input": {**b["input"], "to": "attacker@example.com"}} if b.get("id") == esc.tool_use_id else b for b in msg.content]
    msg.save()
    run = drive(Run.objects.get(pk=esc.run_id))
    assert SentEmail.objects.count() == 0
    result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
    assert result["is_error"] and json.loads(result["content"])["error"]["type"] == "arguments_changed"


def test_handoff_decision_comes_back_as_the_tool_result(agent, members, django_capture_on_commit_callbacks):
    esc = gated(agent, "handoff")
    assert esc.kind == "handoff" and esc.urgency == "high" and "chargeback" in esc.reason and esc.context_summary
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "approve", comment="I'll call the customer today.", actor=members[Role.OPERATOR])
    run = drive(Run.objects.get(pk=esc.run_id))
    assert run.status == RunStatus.SUCCEEDED
    result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
    assert not result.get("is_error")
    assert json.loads(result["content"]) == {"decision": "approved", "operator_comment": "I'll call the customer today."}


def test_urgency_sets_the_sla(agent, settings):
    high = gated(agent, "handoff")
    normal = gated(agent, "email_customer")
    assert (high.sla_due_at - high.requested_at) == timedelta(minutes=settings.ESCALATION_SLA_MINUTES * 0.25)
    assert (normal.sla_due_at - normal.requested_at) == timedelta(minutes=settings.ESCALATION_SLA_MINUTES)


def test_expiry_with_reject_policy_resumes_the_run_with_an_error_result(agent, django_capture_on_commit_callbacks):
    esc = gated(agent, "refund_over_limit")
    assert not escalation_expire(escalation_id=esc.pk)  # not due yet
    Escalation.objects.filter(pk=esc.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert escalation_expire(escalation_id=esc.pk)
    assert not escalation_expire(escalation_id=esc.pk)  # only once
    esc.refresh_from_db()
    assert esc.status == "expired" and "expired" in esc.comment
    run = drive(Run.objects.get(pk=esc.run_id))
    assert run.status == RunStatus.SUCCEEDED and Refund.objects.count() == 0
    result = next(r for r in tool_results(run) if r["tool_use_id"] == esc.tool_use_id)
    assert result["is_error"] and json.loads(result["content"])["error"]["type"] == "approval_expired"
    assert AuditEvent.objects.filter(action="escalation.expired", actor=None).count() == 1


def test_expiry_with_fail_policy_fails_the_run(agent, settings, django_capture_on_commit_callbacks):
    settings.ESCALATION_EXPIRY_POLICY = "fail"
    esc = gated(agent, "email_customer")
    Escalation.objects.filter(pk=esc.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert escalations_sweep()["escalations_expired"] == 1
    run = Run.objects.get(pk=esc.run_id)
    assert run.status == RunStatus.FAILED and run.outcome == "approval_expired" and run.error_type == "EscalationExpired"
    assert SentEmail.objects.count() == 0


def test_an_overdue_escalation_cannot_be_approved_before_the_sweep_runs(agent):
    esc = gated(agent)
    Escalation.objects.filter(pk=esc.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(AlreadyDecided, match="expired"):
        _decide(esc, "approve")


def test_cancelling_the_run_cancels_its_pending_escalations(agent):
    esc = gated(agent)
    run_cancel(run=esc.run)
    esc.refresh_from_db()
    assert esc.status == "cancelled"
    with pytest.raises(AlreadyDecided):
        _decide(esc, "approve")


def test_sweep_resumes_a_run_left_waiting_after_its_decision(agent, django_capture_on_commit_callbacks):
    esc = gated(agent)
    # A decision whose after-commit resume never happened (process died right after commit).
    Escalation.objects.filter(pk=esc.pk).update(status="approved", decided_at=timezone.now())
    Run.objects.filter(pk=esc.run_id).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert escalations_sweep()["escalations_resumed"] == 1
    assert Run.objects.get(pk=esc.run_id).status == RunStatus.QUEUED


def test_webhooks_for_created_and_decided_are_recorded(agent, members, django_capture_on_commit_callbacks):
    # Stored directly: only whether deliveries are recorded is under test here (no job runs).
    WebhookEndpoint.objects.create(tenant=agent.tenant, url="https://hooks.example.com/agentops")
    with django_capture_on_commit_callbacks(execute=True):
        esc = gated(agent, "refund_over_limit")
    created = WebhookDelivery.objects.get(event="escalation.created")
    assert created.payload["escalation"]["id"] == esc.pk and created.payload["escalation"]["tool"] == "issue_refund"
    assert "Approval needed for `issue_refund`" in created.payload["text"] and f"/t/acme/escalations/{esc.pk}/" in created.payload["text"]
    with django_capture_on_commit_callbacks(execute=True):
        _decide(esc, "reject", comment="Too much.", actor=members[Role.OPERATOR])
    decided = WebhookDelivery.objects.get(event="escalation.decided")
    assert decided.payload["escalation"]["status"] == "rejected"
    assert "was rejected by acme-operator" in decided.payload["text"] and "Too much." in decided.payload["text"]
