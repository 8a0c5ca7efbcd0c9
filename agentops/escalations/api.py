"""The escalations API (a django-ninja router): list pending escalations and decide them, with a
key that has the ``escalations`` scope.

Text is redacted as in webhook payloads (``agentops.redact``): the caller reviews redacted
arguments and approves against ``arguments_sha256``, the hash of the exact ones.

``POST /api/v1/escalations/<id>/decide`` with ``{"decision": "approve", "arguments_sha256": "…",
"comment": "…"}``. Approving needs the ``arguments_sha256`` from the listing — the hash of the
arguments the caller reviewed; a different hash (or ``arguments`` that hash differently) is
refused with 409 ``arguments_mismatch``. A second decision gets 409 ``already_decided``;
replaying the same POST changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router

from agentops.escalations import selectors, services
from agentops.escalations.models import Escalation as EscalationRow
from agentops.escalations.models import EscalationStatus
from agentops.tools.registry import arguments_sha256
from tenants.api import ApiError, ApiKeyAuth, QueryInt, RequestBody, ResponseBody, api_key

MAX_LIMIT = 200
# The document's enums; tests/escalations/test_api.py checks they match services and selectors.
Decision = Literal["approve", "reject", "retry", "mark_done", "fail"]
Kind = Literal["tool_call", "handoff", "outcome_unknown"]

router = Router(tags=["escalations"], auth=ApiKeyAuth("escalations"))


class GrantOut(ResponseBody):
    id: int
    tool: str
    agent: str | None
    role: str | None
    requires_approval: bool
    approval_over: dict[str, Any]
    allow: dict[str, Any]


class Escalation(ResponseBody):
    id: int
    run_id: int
    kind: Kind
    tool: str
    tool_use_id: str
    arguments: dict[str, Any] = Field(description="Redacted; approve against arguments_sha256.")
    arguments_sha256: str
    gate_reason: str
    reason: str | None
    context_summary: str | None
    urgency: str
    status: EscalationStatus
    requested_at: datetime
    sla_due_at: datetime
    sla_overdue: bool
    expires_at: datetime
    grant: GrantOut | None
    decided_by: str | None
    decided_by_key: str | None
    decided_at: datetime | None
    comment: str | None
    decision: str | None
    result: str | None


class EscalationList(ResponseBody):
    data: list[Escalation]
    count: int


class EscalationDecision(RequestBody):
    decision: Decision = Field(description="approve / reject; for an outcome_unknown escalation: retry / mark_done / fail.")
    comment: str = Field("", max_length=services.MAX_COMMENT_CHARS)
    arguments_sha256: str | None = Field(None, max_length=64, description="The hash of the arguments you reviewed.")
    arguments: dict[str, Any] | None = Field(None, description="The exact arguments approved (must hash to the gated call's).")
    result: str | None = Field(None, max_length=100_000, description="mark_done: what the model is told the call returned.")


def _escalation_or_404(request: HttpRequest, escalation_id: str) -> EscalationRow:
    try:
        return selectors.escalation_get(tenant=api_key(request).tenant, escalation_id=escalation_id)
    except EscalationRow.DoesNotExist:
        raise ApiError(404, "not_found", "No such escalation.")


@router.get("/escalations", url_name="api_escalations_list", response=EscalationList)
def escalations_list(
    request: HttpRequest,
    status: EscalationStatus = Query(EscalationStatus.PENDING),
    limit: QueryInt = Query(50, ge=1, le=MAX_LIMIT),
) -> dict[str, Any]:
    """Escalations of one status (pending first by urgency and age)."""
    tenant = api_key(request).tenant
    related = ("grant", "grant__agent", "decided_by", "decided_by_key")
    if status == EscalationStatus.PENDING:
        rows = selectors.pending_top(tenant=tenant, limit=limit, related=related)
    else:
        qs = selectors.escalations_history(tenant=tenant, filters=selectors.HistoryFilters(status=status))
        rows = list(qs.select_related(*related)[:limit])
    return {"data": [selectors.escalation_as_dict(e) for e in rows], "count": len(rows)}


@router.get("/escalations/{escalation_id}", url_name="api_escalations_detail", response=Escalation)
def escalations_detail(request: HttpRequest, escalation_id: str) -> dict[str, Any]:
    """One escalation, its arguments redacted, with the arguments_sha256 to approve against."""
    return selectors.escalation_as_dict(_escalation_or_404(request, escalation_id))


@router.post("/escalations/{escalation_id}/decide", url_name="api_escalations_decide", response=Escalation)
def escalations_decide(request: HttpRequest, escalation_id: str, body: EscalationDecision) -> dict[str, Any]:
    """Decide: approve or reject; retry, mark_done or fail an outcome_unknown escalation (409 on a second decision)."""
    key = api_key(request)
    escalation = _escalation_or_404(request, escalation_id)
    decision = body.decision
    shown = body.arguments_sha256
    if decision in ("approve", "retry") and not shown:
        raise ApiError(400, "invalid_request", f"Deciding {decision} needs 'arguments_sha256': the hash of the arguments you reviewed.")
    # A caller that sends arguments is approving those: they must be exactly the gated ones.
    if body.arguments is not None and arguments_sha256(body.arguments) != escalation.arguments_sha256:
        raise ApiError(409, "arguments_mismatch", "These arguments are not the gated call's; nothing was decided.")
    try:
        escalation = services.escalation_decide(
            escalation_id=escalation.pk, tenant=key.tenant, decision=decision, comment=body.comment,
            actor=None, actor_key=key, arguments_sha256=shown, result=body.result,
        )
    except (services.AlreadyDecided, services.ArgumentsMismatch) as exc:
        raise ApiError(409, exc.code, str(exc))
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    except EscalationRow.DoesNotExist:
        raise ApiError(404, "not_found", "No such escalation.")
    escalation = selectors.escalation_get(tenant=key.tenant, escalation_id=escalation.pk)
    return selectors.escalation_as_dict(escalation)
