"""Opening escalations from inside the harness. Decisions, expiry and resume live in escalations.services."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from agentops.escalations.models import Escalation, EscalationStatus
from agentops.escalations.notify import escalation_created
from agentops.tools.registry import arguments_sha256, get_tool
from runs.models import Run, ToolGrant

SLA_BY_URGENCY = {"high": 0.25, "normal": 1.0, "low": 4.0}  # × ESCALATION_SLA_MINUTES


def escalation_open(
    *, run: Run, kind: str, tool_use_id: str, tool_name: str, arguments: dict[str, Any], grant: ToolGrant | None,
    gate_reason: str, reason: str = "", context_summary: str = "", urgency: str = "",
) -> Escalation:
    if urgency not in SLA_BY_URGENCY:
        urgency = "high" if kind == Escalation.KIND_TOOL and _looks_risky(tool_name, run.tenant_id) else "normal"
    now = timezone.now()
    sla = timedelta(minutes=settings.ESCALATION_SLA_MINUTES * SLA_BY_URGENCY[urgency])
    escalation, created = Escalation.unscoped.get_or_create(
        run_id=run.pk,
        tool_use_id=tool_use_id,
        kind=kind,
        defaults={
            "tenant_id": run.tenant_id, "tool_name": tool_name, "arguments": arguments,
            "arguments_sha256": arguments_sha256(arguments), "grant": grant, "gate_reason": gate_reason[:300],
            "reason": reason[:2000], "context_summary": context_summary[:4000], "urgency": urgency,
            "requested_at": now, "sla_due_at": now + sla,
            "expires_at": now + timedelta(minutes=settings.ESCALATION_EXPIRE_MINUTES),
        },
    )
    if created:
        escalation_created(escalation)
    return escalation


def escalation_reopen(*, escalation: Escalation, gate_reason: str) -> Escalation:
    """Put a decided outcome_unknown escalation back to pending: the retry it allowed was itself
    cut off by a crash, so a human decides again (the audit log keeps the first decision)."""
    now = timezone.now()
    sla = timedelta(minutes=settings.ESCALATION_SLA_MINUTES * SLA_BY_URGENCY.get(escalation.urgency, 1.0))
    Escalation.unscoped.filter(pk=escalation.pk).exclude(status="pending").update(
        status="pending", decision="", resolution="", comment="", decided_by=None, decided_by_key=None, decided_at=None,
        gate_reason=gate_reason[:300], requested_at=now, sla_due_at=now + sla,
        expires_at=now + timedelta(minutes=settings.ESCALATION_EXPIRE_MINUTES),
    )
    escalation.refresh_from_db()
    escalation_created(escalation)
    return escalation


def _looks_risky(tool_name: str, tenant_id: int) -> bool:
    spec = get_tool(tool_name, tenant_id)
    return spec is not None and spec.side_effect == "irreversible"


class EscalationStore:
    """The harness's view of escalations (``agentops.harness.hooks.EscalationStore``), registered in ``ready()``."""
    def for_run(self, *, run_id: int, tool_use_ids: Iterable[str]) -> Iterable[Escalation]:
        return Escalation.unscoped.filter(run_id=run_id, tool_use_id__in=list(tool_use_ids))

    def open(self, **kwargs: Any) -> Escalation:
        return escalation_open(**kwargs)

    def reopen(self, *, escalation: Any, gate_reason: str) -> Escalation:
        return escalation_reopen(escalation=escalation, gate_reason=gate_reason)

    def cancel_pending(self, *, run: Run, now: datetime) -> None:
        Escalation.objects.for_tenant(run.tenant_id).filter(run_id=run.pk, status=EscalationStatus.PENDING).update(
            status=EscalationStatus.CANCELLED, decided_at=now, comment="Run cancelled."
        )
