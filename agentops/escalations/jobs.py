"""RQ jobs for escalations. Thin: each calls one service."""

from __future__ import annotations

from django.db import close_old_connections
from django.utils import timezone

# The module, not its names: services schedules these jobs, so the two import each other.
from agentops.escalations import services
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.jobs import enqueue_in, survives_db_outage


@survives_db_outage
def escalation_expire_job(escalation_id: int) -> str:
    """Scheduled at ``expires_at``; re-schedules itself if it ran early (clock skew)."""
    close_old_connections()
    try:
        row = Escalation.unscoped.filter(pk=escalation_id).values("status", "expires_at").first()
        if row is None or row["status"] != EscalationStatus.PENDING:
            return "not_pending"
        remaining = (row["expires_at"] - timezone.now()).total_seconds()
        if remaining > 0:
            enqueue_in(remaining + 0.5, escalation_expire_job, escalation_id, queue="default")
            return "rescheduled"
        return "expired" if services.escalation_expire(escalation_id=escalation_id) else "not_pending"
    finally:
        close_old_connections()


@survives_db_outage
def escalation_expiring_job(escalation_id: int) -> bool:
    close_old_connections()
    try:
        return services.escalation_notify_expiring(escalation_id=escalation_id)
    finally:
        close_old_connections()


@survives_db_outage
def escalation_resume_job(run_id: int, attempt: int = 0) -> str:
    close_old_connections()
    try:
        return services.escalation_resume_run(run_id=run_id, attempt=attempt)
    finally:
        close_old_connections()


def escalations_sweep_job() -> dict[str, int]:
    """For the reconciler loop: expire due escalations, resume runs whose escalations are decided."""
    return services.escalations_sweep()
