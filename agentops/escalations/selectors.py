"""Reads for escalations: the inbox, the detail page, history, counts and the API shape."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from agentops import keyset
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.redact import redact, redact_obj
from agentops.tools.registry import get_tool
from runs.models import Message, Run, ToolCall
from tenants.access import parse_id
from tenants.models import Tenant, WebhookDelivery

STATUSES = [s.value for s in EscalationStatus]
KINDS = [Escalation.KIND_TOOL, Escalation.KIND_HANDOFF, Escalation.KIND_OUTCOME_UNKNOWN]


def _ident(value: Any) -> int:
    ident = parse_id(value)
    if ident is None:
        raise Escalation.DoesNotExist
    return ident


def escalation_get(*, tenant: Tenant | int, escalation_id: Any) -> Escalation:
    """The tenant's escalation or ``Escalation.DoesNotExist`` — one answer for missing and not yours."""
    return (
        Escalation.objects.for_tenant(tenant)
        .select_related("run", "run__agent", "grant", "grant__agent", "decided_by", "decided_by_key", "tenant")
        .get(pk=_ident(escalation_id))
    )


def pending_top(*, tenant: Tenant | int, limit: int = 200, related: tuple[str, ...] = ("run", "run__agent"),
                after: str = "") -> list[Escalation]:
    """Pending escalations, most urgent first, then oldest first (the one waiting longest): the first ``limit``
    (after the cursor ``after``, from :func:`pending_cursor`, for the inbox's next page).

    One query per urgency (high, normal, the rest), each an index range on (tenant, status,
    urgency, requested_at) cut at ``limit``: the join to run and agent touches only the rows shown.
    A malformed cursor is a ``keyset.BadCursor``.
    """
    start, at, pk = _decode_pending(after) if after else (0, None, 0)
    base = Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).select_related(*related)
    buckets = (base.filter(urgency="high"), base.filter(urgency="normal"), base.exclude(urgency__in=["high", "normal"]))
    rows: list[Escalation] = []
    for index, bucket in enumerate(buckets):
        if len(rows) >= limit:
            break
        if index < start:
            continue
        if index == start and at is not None:
            bucket = bucket.filter(Q(requested_at__gt=at) | Q(requested_at=at, pk__gt=pk), requested_at__gte=at)
        rows.extend(bucket.order_by("requested_at", "id")[: limit - len(rows)])
    return rows


def _bucket(escalation: Escalation) -> int:
    return {"high": 0, "normal": 1}.get(escalation.urgency, 2)


def pending_cursor(escalation: Escalation) -> str:
    """Where the inbox's next page starts: after ``escalation`` (its urgency, then age)."""
    return f"{_bucket(escalation)}:{keyset.encode(escalation.requested_at, escalation.pk)}"


def _decode_pending(cursor: str) -> tuple[int, datetime, int]:
    bucket, sep, rest = cursor.partition(":")
    if not sep or bucket not in ("0", "1", "2"):
        raise keyset.BadCursor("The 'after' cursor is not one the inbox gave out; start from the most urgent.")
    at, pk = keyset.decode(rest)
    return int(bucket), at, pk


@dataclass
class HistoryFilters:
    status: str = ""
    kind: str = ""
    tool: str = ""
    decided_by: str = ""
    run: str = ""
    days: int = 0

    @classmethod
    def from_query(cls, q: Any) -> HistoryFilters:
        days = q.get("days", "")
        return cls(
            status=q.get("status", "") if q.get("status", "") in STATUSES else "",
            kind=q.get("kind", "") if q.get("kind", "") in KINDS else "",
            tool=q.get("tool", "")[:200],
            decided_by=q.get("decided_by", "")[:150],
            run=q.get("run", "") if q.get("run", "").isdigit() and len(q.get("run", "")) < 19 else "",
            days=int(days) if days.isdigit() and 0 < int(days) <= 3650 else 0,
        )


def escalations_history(*, tenant: Tenant | int, filters: HistoryFilters) -> QuerySet[Escalation]:
    qs = Escalation.objects.for_tenant(tenant).select_related("run", "run__agent", "decided_by", "decided_by_key")
    if filters.status:
        qs = qs.filter(status=filters.status)
    else:
        qs = qs.exclude(status=EscalationStatus.PENDING)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.tool:
        qs = qs.filter(tool_name=filters.tool)
    if filters.decided_by:
        qs = qs.filter(decided_by__username=filters.decided_by)
    if filters.run:
        qs = qs.filter(run_id=int(filters.run))
    if filters.days:
        qs = qs.filter(requested_at__gte=timezone.now() - timedelta(days=filters.days))
    return qs.order_by("-decided_at", "-requested_at", "-id")


def history_choices(*, tenant: Tenant | int) -> dict[str, list[str]]:
    qs = Escalation.objects.for_tenant(tenant)
    tools = sorted(set(qs.values_list("tool_name", flat=True).distinct()[:200]))
    deciders = sorted(set(qs.exclude(decided_by=None).values_list("decided_by__username", flat=True).distinct()[:200]))
    return {"statuses": STATUSES, "kinds": KINDS, "tools": tools, "deciders": deciders}


def escalation_counts(*, tenant: Tenant | int, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    # One pass over the pending rows for all four figures (not a COUNT each).
    found = Escalation.objects.for_tenant(tenant).filter(status=EscalationStatus.PENDING).aggregate(
        pending=Count("id"), overdue=Count("id", filter=Q(sla_due_at__lt=now)), high=Count("id", filter=Q(urgency="high")),
        oldest=Min("requested_at"),
    )
    oldest = found.pop("oldest")
    return {**found, "oldest_age": now - oldest if oldest else None}


# -- presentation helpers ------------------------------------------------------------------

def humanize_delta(seconds: float) -> str:
    seconds = abs(int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def sla_state(escalation: Escalation, now: datetime | None = None) -> dict[str, Any]:
    """The SLA timer: label (``due in 12 min`` / ``overdue 5 min``) and tone (ok / warn / overdue)."""
    now = now or timezone.now()
    total = max(1.0, (escalation.sla_due_at - escalation.requested_at).total_seconds())
    left = (escalation.sla_due_at - now).total_seconds()
    if left < 0:
        tone, label = "overdue", f"overdue {humanize_delta(left)}"
    else:
        tone, label = ("warn" if left < total / 4 else "ok"), f"due in {humanize_delta(left)}"
    return {
        "tone": tone, "label": label, "seconds_left": int(left),
        "age": humanize_delta((now - escalation.requested_at).total_seconds()),
        "expires_in": humanize_delta((escalation.expires_at - now).total_seconds()),
    }


def decorate(escalations: list[Escalation], now: datetime | None = None) -> list[Escalation]:
    now = now or timezone.now()
    for e in escalations:
        e.sla = sla_state(e, now)  # type: ignore[attr-defined]
    return escalations


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def argument_rows(arguments: Any) -> list[dict[str, Any]]:
    """Arguments as (name, value) rows for reading: strings as written, anything else as JSON."""
    if not isinstance(arguments, dict):
        return [{"name": "(arguments)", "value": _pretty(arguments), "multiline": True}]
    rows = []
    for name in sorted(arguments):
        text = _pretty(arguments[name])
        rows.append({"name": name, "value": text, "multiline": "\n" in text or len(text) > 80})
    return rows


def _block_view(block: dict[str, Any]) -> dict[str, Any]:
    kind = block.get("type", "")
    if kind == "text":
        return {"kind": "text", "text": redact(str(block.get("text", "")))[:4000]}
    if kind == "tool_use":
        return {"kind": "tool_use", "name": block.get("name", ""), "id": block.get("id", ""),
                "text": _pretty(redact_obj(block.get("input")))[:4000]}
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            content = "\n".join(str(c.get("text", "")) if isinstance(c, dict) else str(c) for c in content)
        return {"kind": "tool_result", "id": block.get("tool_use_id", ""), "is_error": bool(block.get("is_error")),
                "text": redact(str(content))[:4000]}
    return {"kind": kind or "block", "text": _pretty(redact_obj(block))[:2000]}


def recent_turns(*, run: Run, limit: int = 8) -> list[dict[str, Any]]:
    msgs = list(Message.objects.for_tenant(run.tenant_id).filter(run=run).order_by("-seq")[:limit])
    msgs.reverse()
    return [
        {"seq": m.seq, "role": m.role, "flags": m.flags or [], "at": m.created_at,
         "blocks": [_block_view(b) for b in (m.content or []) if isinstance(b, dict)]}
        for m in msgs
    ]


def escalation_deliveries(*, escalation: Escalation) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.for_tenant(escalation.tenant_id).filter(
        event__startswith="escalation.", payload__escalation__id=escalation.pk
    ).order_by("-created_at", "-id")


def failed_deliveries(*, tenant: Tenant | int, days: int = 1) -> QuerySet[WebhookDelivery]:
    since = timezone.now() - timedelta(days=days)
    return WebhookDelivery.objects.for_tenant(tenant).filter(
        event__startswith="escalation.", status__in=(WebhookDelivery.FAILED, WebhookDelivery.REFUSED), created_at__gte=since
    ).order_by("-created_at", "-id")


def escalation_detail(*, escalation: Escalation) -> dict[str, Any]:
    run = escalation.run
    spec = get_tool(escalation.tool_name, escalation.tenant_id)
    call = ToolCall.objects.for_tenant(escalation.tenant_id).filter(run=run, tool_use_id=escalation.tool_use_id).first()
    return {
        "run": run,
        "turns": recent_turns(run=run),
        "argument_rows": argument_rows(escalation.arguments),
        "arguments_json": _pretty(escalation.arguments),
        "side_effect": getattr(spec, "side_effect", ""),
        "tool_description": getattr(spec, "description", ""),
        "tool_call": call,
        "deliveries": list(escalation_deliveries(escalation=escalation)[:20]),
        "sla": sla_state(escalation),
    }


def escalation_as_dict(escalation: Escalation) -> dict[str, Any]:
    """The API shape, redacted like the webhook payload (agentops/escalations/notify.py): arguments are shown
    redacted and the caller approves against ``arguments_sha256``, the hash of the exact ones."""
    sla = sla_state(escalation) if escalation.status == EscalationStatus.PENDING else None
    grant = escalation.grant
    return {
        "id": escalation.pk,
        "run_id": escalation.run_id,
        "kind": escalation.kind,
        "tool": escalation.tool_name,
        "tool_use_id": escalation.tool_use_id,
        "arguments": redact_obj(escalation.arguments),
        "arguments_sha256": escalation.arguments_sha256,
        "gate_reason": redact(escalation.gate_reason),
        "reason": redact(escalation.reason) or None,
        "context_summary": redact(escalation.context_summary) or None,
        "urgency": escalation.urgency,
        "status": escalation.status,
        "requested_at": escalation.requested_at.isoformat(),
        "sla_due_at": escalation.sla_due_at.isoformat(),
        "sla_overdue": bool(sla and sla["tone"] == "overdue"),
        "expires_at": escalation.expires_at.isoformat(),
        "grant": {"id": grant.pk, "tool": grant.tool_name, "agent": grant.agent.name if grant.agent else None,
                  "role": grant.role or None, "requires_approval": grant.requires_approval,
                  "approval_over": grant.approval_over, "allow": grant.allow} if grant else None,
        "decided_by": escalation.decided_by.get_username() if escalation.decided_by else None,
        "decided_by_key": escalation.decided_by_key.prefix if escalation.decided_by_key else None,
        "decided_at": escalation.decided_at.isoformat() if escalation.decided_at else None,
        "comment": redact(escalation.comment) or None,
        "decision": escalation.decision or None,
        "result": redact(escalation.resolution) or None,
    }
