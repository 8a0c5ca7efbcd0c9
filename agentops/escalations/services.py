"""Writes for escalations: decide (approve / reject), expire, and put the waiting run back to work.

A decision is one conditional ``UPDATE … WHERE status = 'pending'``: the database decides which of
two concurrent operators wins, and the loser gets :class:`AlreadyDecided` (409 in the API). The
approved arguments are pinned by their SHA-256: the operator's form carries the hash they saw, the
stored arguments and the run's message log must still hash to it, and the harness checks it once
more before it executes. Side effects (resume the run, webhooks) happen only after commit.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agentops.escalations import (
    jobs,  # the module: jobs call these services back
    notify,
)
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.jobs import enqueue_in
from agentops.tools.registry import arguments_sha256
from runs.models import Message, Run, RunEvent, RunStatus
from runs.services import RunRefused, log_close_dangling, run_resume
from tenants.models import ApiKey, Tenant
from tenants.services import audit_record

log = logging.getLogger(__name__)

DECISIONS = {"approve": EscalationStatus.APPROVED, "reject": EscalationStatus.REJECTED}
# A tool call whose outcome is unknown (cut off by a crash): run it again under the same key,
# record it as done with the result the operator vouches for, or fail the run.
OUTCOME_UNKNOWN_DECISIONS = {"retry": EscalationStatus.APPROVED, "mark_done": EscalationStatus.APPROVED, "fail": EscalationStatus.REJECTED}
ALL_DECISIONS = {**DECISIONS, **OUTCOME_UNKNOWN_DECISIONS}
MAX_COMMENT_CHARS = 5000
MAX_RESULT_CHARS = 16000
# While the harness has not released the run yet (a decision that raced the gate), retry the
# resume this many times, one second apart; the expiry sweep picks up anything left after that.
RESUME_RETRIES = 30
EXPIRY_POLICIES = ("reject", "fail")


class EscalationError(Exception):
    """A decision that cannot be applied; ``code`` is the API's error type."""
    code = "escalation_error"


class AlreadyDecided(EscalationError):
    code = "already_decided"

    def __init__(self, escalation: Escalation):
        self.escalation = escalation
        who = ""
        if escalation.decided_by_id:
            who = f" by {escalation.decided_by}"
        elif escalation.decided_by_key_id:
            who = " by an API key"
        super().__init__(f"This escalation was already decided: {escalation.status}{who}.")


class ArgumentsMismatch(EscalationError):
    code = "arguments_mismatch"


def _hash(arguments: Any) -> str:
    return arguments_sha256(arguments)


def _clean_comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ValidationError("comment must be a string.")
    if "\x00" in comment:
        raise ValidationError("comment contains NUL bytes.")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError(f"comment is longer than {MAX_COMMENT_CHARS} characters.")
    return comment


def logged_tool_use_input(escalation: Escalation) -> tuple[bool, Any]:
    """The ``input`` of the escalation's tool_use block in the run's message log: ``(found, input)``."""
    turns = Message.objects.for_tenant(escalation.tenant_id).filter(run_id=escalation.run_id, role="assistant").order_by("-seq")
    for msg in turns.only("content")[:50]:
        for block in msg.content or []:
            if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("id") == escalation.tool_use_id:
                return True, block.get("input")
    return False, None


def arguments_problem(escalation: Escalation, *, shown_sha256: str | None = None) -> str | None:
    """Why these arguments may not be approved, or None when all three copies agree.

    The hash the operator saw, the hash stored when the call was gated, the stored arguments and
    the ``tool_use`` block in the durable log must all agree: a row edited after the gate, or a
    forged form, must never turn an approval into a different call.
    """
    if shown_sha256 is not None and shown_sha256 != escalation.arguments_sha256:
        return "The arguments you approved are not the ones this call holds; reload and review them again."
    if _hash(escalation.arguments) != escalation.arguments_sha256:
        return "The stored arguments changed after the call was gated; it cannot be approved."
    found, logged = logged_tool_use_input(escalation)
    if found and _hash(logged) != escalation.arguments_sha256:
        return "The run's logged tool call no longer matches the gated arguments; it cannot be approved."
    return None


def escalation_decide(
    *,
    escalation_id: int,
    tenant: Tenant,
    decision: str,
    comment: str,
    actor: Any = None,
    actor_key: ApiKey | None = None,
    arguments_sha256: str | None = None,
    result: str | None = None,
) -> Escalation:
    """Decide a pending escalation, exactly once.

    A gated call or hand-off takes ``approve`` / ``reject``; a call whose outcome is unknown
    takes ``retry`` (run it again under the same idempotency key; the arguments hash is pinned as
    for an approval), ``mark_done`` (with ``result``: what the model receives as the tool's
    result) or ``fail`` (stop the run).

    Raises ``Escalation.DoesNotExist`` (not this tenant's, or no such id), ``ValidationError``
    (bad decision, comment or result), :class:`ArgumentsMismatch` (approve or retry with
    arguments other than the gated ones) and :class:`AlreadyDecided` (someone else got there
    first, or it expired).
    """
    if decision not in ALL_DECISIONS:
        raise ValidationError("decision must be 'approve' or 'reject' (or, for an unknown outcome, 'retry', 'mark_done' or 'fail').")
    comment = _clean_comment(comment)
    if decision == "reject" and not comment:
        raise ValidationError("Say why you reject it: the agent receives your reason.")
    if arguments_sha256 is not None and not isinstance(arguments_sha256, str):
        raise ValidationError("arguments_sha256 must be a string.")
    resolution = ""
    if decision == "mark_done":
        if not isinstance(result, str) or "\x00" in result or not result.strip():
            raise ValidationError("Marking the call done needs its result: what the tool did, as the agent should read it.")
        if len(result) > MAX_RESULT_CHARS:
            raise ValidationError(f"result is longer than {MAX_RESULT_CHARS} characters.")
        resolution = result.strip()
    status = ALL_DECISIONS[decision]
    with transaction.atomic():
        escalation = Escalation.objects.for_tenant(tenant).select_related("decided_by").get(pk=escalation_id)
        if escalation.status != EscalationStatus.PENDING:
            raise AlreadyDecided(escalation)
        allowed = OUTCOME_UNKNOWN_DECISIONS if escalation.kind == Escalation.KIND_OUTCOME_UNKNOWN else DECISIONS
        if decision not in allowed:
            raise ValidationError(f"This escalation takes {', '.join(repr(d) for d in allowed)}.")
        if decision in ("approve", "retry"):
            problem = arguments_problem(escalation, shown_sha256=arguments_sha256)
            if problem:
                raise ArgumentsMismatch(problem)
        elif arguments_sha256 is not None and arguments_sha256 != escalation.arguments_sha256:
            raise ArgumentsMismatch("This form was for other arguments; reload and review the call again.")
        now = timezone.now()
        user = actor if getattr(actor, "is_authenticated", False) else None
        won = Escalation.objects.for_tenant(tenant).filter(
            pk=escalation.pk, status=EscalationStatus.PENDING, expires_at__gt=now
        ).update(status=status, decided_by=user, decided_by_key=actor_key, decided_at=now, comment=comment, decision=decision,
                 resolution=resolution)
        if not won:
            raise AlreadyDecided(_reload(escalation, expired_at=now))
        escalation.refresh_from_db()
        audit_record(
            tenant=tenant, actor=user, actor_key=actor_key,
            action=f"escalation.{decision}" if escalation.kind == Escalation.KIND_OUTCOME_UNKNOWN else f"escalation.{status}", target=escalation,
            before={"status": EscalationStatus.PENDING},
            after=_audit_after(escalation),
        )
        RunEvent.objects.create(
            tenant=tenant, run_id=escalation.run_id, type="escalation_decided",
            data={"escalation_id": escalation.pk, "tool_use_id": escalation.tool_use_id, "status": status, "decision": decision,
                  "by": user.get_username() if user else (f"key {actor_key.prefix}" if actor_key else "")},
        )
        run_id, esc_id = escalation.run_id, escalation.pk
        transaction.on_commit(lambda: _after_decision(run_id, esc_id))
    return escalation


def _reload(escalation: Escalation, *, expired_at: datetime) -> Escalation:
    fresh = Escalation.objects.for_tenant(escalation.tenant_id).select_related("decided_by").get(pk=escalation.pk)
    if fresh.status == EscalationStatus.PENDING and fresh.expires_at <= expired_at:
        fresh.status = EscalationStatus.EXPIRED  # due; the expiry job will record it
    return fresh


def _audit_after(escalation: Escalation) -> dict[str, Any]:
    return {
        "status": escalation.status, "comment": escalation.comment, "run_id": escalation.run_id,
        "grant_id": escalation.grant_id, "kind": escalation.kind, "tool": escalation.tool_name,
        "tool_use_id": escalation.tool_use_id, "arguments_sha256": escalation.arguments_sha256,
        "decision": escalation.decision, "resolution": escalation.resolution[:2000],
    }


def _after_decision(run_id: int, escalation_id: int) -> None:
    """After commit: put the run back on a worker and tell the tenant's webhook. Never raises."""
    try:
        escalation_resume_run(run_id=run_id)
    except Exception:
        log.exception("resuming run %s after escalation %s failed; the sweep will retry", run_id, escalation_id)
    _notify(escalation_id, "decided")


def _notify(escalation_id: int, what: str) -> None:
    try:
        escalation = Escalation.unscoped.select_related("tenant", "run", "decided_by").get(pk=escalation_id)
        getattr(notify, f"escalation_{what}")(escalation)
    except Exception:
        log.exception("escalation %s webhook (%s) could not be queued", escalation_id, what)


def escalation_resume_run(*, run_id: int, attempt: int = 0) -> str:
    """Resume a run whose escalations are all decided. Returns what happened (for logs and tests).

    The decision can land between the gate opening the escalation and the worker releasing the
    run as ``awaiting_approval``; then the run is still ``running`` and we try again shortly.
    """

    run = Run.unscoped.select_related("tenant", "agent").filter(pk=run_id).first()
    if run is None or run.is_terminal:
        return "terminal"
    if Escalation.unscoped.filter(run_id=run_id, status=EscalationStatus.PENDING).exists():
        return "still_waiting"
    if run.status == RunStatus.AWAITING_APPROVAL:
        try:
            run_resume(run=run, reason="escalation_decided")
        except RunRefused:
            return "kill_switch"  # the sweep resumes it once the switch is off
        except ValidationError:
            return "not_resumable"  # its status moved on under us
        return "resumed"
    if run.status == RunStatus.RUNNING and attempt < RESUME_RETRIES:
        with transaction.atomic():
            enqueue_in(1.0, jobs.escalation_resume_job, run_id, attempt + 1, queue="default")
        return "retry_scheduled"
    return run.status


# -- expiry ---------------------------------------------------------------------------------

def expiry_policy() -> str:
    policy = str(getattr(settings, "ESCALATION_EXPIRY_POLICY", "reject")).lower()
    return policy if policy in EXPIRY_POLICIES else "reject"


def escalation_expire(*, escalation_id: int, now: datetime | None = None) -> bool:
    """Expire one pending escalation that is past ``expires_at``; True if this call did it.

    Policy ``reject`` resumes the run (the model receives an ``is_error`` result saying nobody
    approved in time); ``fail`` stops the run as ``failed: approval_expired`` (still resumable).
    """
    now = now or timezone.now()
    policy = expiry_policy()
    with transaction.atomic():
        escalation = Escalation.unscoped.filter(pk=escalation_id).select_related("tenant").first()
        if escalation is None:
            return False
        minutes = max(1, round((escalation.expires_at - escalation.requested_at).total_seconds() / 60))
        comment = f"No operator decided within {minutes} minutes; the request expired."
        won = Escalation.unscoped.filter(pk=escalation_id, status=EscalationStatus.PENDING, expires_at__lte=now).update(
            status=EscalationStatus.EXPIRED, decided_at=now, comment=comment,
        )
        if not won:
            return False
        escalation.refresh_from_db()
        audit_record(tenant=escalation.tenant, actor=None, action="escalation.expired", target=escalation,
                     before={"status": EscalationStatus.PENDING}, after={**_audit_after(escalation), "policy": policy})
        RunEvent.unscoped.create(tenant_id=escalation.tenant_id, run_id=escalation.run_id, type="escalation_decided",
                                 data={"escalation_id": escalation.pk, "tool_use_id": escalation.tool_use_id,
                                       "status": EscalationStatus.EXPIRED, "policy": policy})
        if policy == "fail":
            _fail_run(escalation, now)
        run_id = escalation.run_id
        if policy == "reject":
            transaction.on_commit(lambda: _after_decision(run_id, escalation_id))
        else:
            transaction.on_commit(lambda: _notify(escalation_id, "decided"))
    return True


def escalation_expire_now(*, tenant: Any, escalation_id: int, actor: Any) -> bool:
    """An admin expires a pending escalation before its time: it is brought due and expired as the
    sweep would (the same expiry policy, run resumption and notification), and the admin who did
    it is audited. False if it was no longer pending."""
    now = timezone.now()
    moved = Escalation.objects.for_tenant(tenant).filter(pk=escalation_id, status=EscalationStatus.PENDING).update(expires_at=now)
    if not moved or not escalation_expire(escalation_id=escalation_id, now=now):
        return False
    escalation = Escalation.objects.for_tenant(tenant).get(pk=escalation_id)
    audit_record(tenant=tenant, actor=actor, action="escalation.expire_now", target=escalation,
                 before={"status": EscalationStatus.PENDING}, after={"status": escalation.status})
    return True


def _fail_run(escalation: Escalation, now: datetime) -> None:
    run = Run.unscoped.select_for_update().get(pk=escalation.run_id)
    if run.status != RunStatus.AWAITING_APPROVAL or run.lease_owner:
        return  # on a worker: the loop sees the expiry and answers the model itself
    run.status, run.outcome, run.finished_at = RunStatus.FAILED, "approval_expired", now
    run.error_type = "EscalationExpired"
    run.error_message = f"Nobody decided on {escalation.tool_name} before the approval expired."
    run.save(update_fields=["status", "outcome", "finished_at", "error_type", "error_message", "updated_at"])

    log_close_dangling(run=run, error_type="approval_expired", message="Not executed: nobody approved this call in time.")
    RunEvent.unscoped.create(tenant_id=run.tenant_id, run_id=run.pk, type="status",
                             data={"status": RunStatus.FAILED, "outcome": "approval_expired"})


def escalation_notify_expiring(*, escalation_id: int) -> bool:
    """Send the "expiring soon" webhook once, if the escalation is still pending."""
    escalation = Escalation.unscoped.filter(pk=escalation_id, status=EscalationStatus.PENDING).first()
    if escalation is None or escalation.expires_at <= timezone.now():
        return False
    _notify(escalation_id, "expiring")
    return True


def escalations_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic safety net (reconciler or scheduler): expire what is due, resume what was decided.

    Per-escalation jobs scheduled at creation normally do this on time; the sweep covers a flushed
    Redis, a missed schedule, or a resume refused by a kill switch that is now off.
    """
    now = now or timezone.now()
    expired = 0
    due = Escalation.unscoped.filter(status=EscalationStatus.PENDING, expires_at__lte=now).values_list("pk", flat=True)
    for pk in list(due[:500]):
        expired += escalation_expire(escalation_id=pk, now=now)
    # Runs left waiting although nothing of theirs is pending any more.
    waiting = Run.unscoped.filter(status=RunStatus.AWAITING_APPROVAL, updated_at__lt=now - timedelta(seconds=30))
    stuck = waiting.exclude(escalations__status=EscalationStatus.PENDING).filter(escalations__isnull=False).distinct()
    resumed = 0
    for run_id in list(stuck.values_list("pk", flat=True)[:500]):
        resumed += escalation_resume_run(run_id=run_id, attempt=RESUME_RETRIES) == "resumed"
    return {"escalations_expired": expired, "escalations_resumed": resumed}
