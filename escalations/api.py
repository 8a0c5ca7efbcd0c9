"""The escalations API: list pending escalations and decide them, with a key that has the
``escalations`` scope.

Text is redacted as in webhook payloads (``agentops.redact``): the caller reviews redacted
arguments and approves against ``arguments_sha256``, the hash of the exact ones.

``POST /api/v1/escalations/<id>/decide`` with ``{"decision": "approve", "arguments_sha256": "…",
"comment": "…"}``. Approving needs the ``arguments_sha256`` from the listing — the hash of the
arguments the caller reviewed; a different hash (or ``arguments`` that hash differently) is
refused with 409 ``arguments_mismatch``. A second decision gets 409 ``already_decided``;
replaying the same POST changes nothing.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse

from escalations import selectors, services
from escalations.models import Escalation, EscalationStatus
from tenants.api import ApiContext, ApiError, api_view

MAX_LIMIT = 200
_TEXT = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
ESCALATION_SCHEMA = {
    "title": "Escalation",
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "run_id": {"type": "integer"}, "kind": {"enum": list(selectors.KINDS)},
        "tool": {"type": "string"}, "tool_use_id": {"type": "string"},
        "arguments": {"type": "object", "description": "Redacted; approve against arguments_sha256."},
        "arguments_sha256": {"type": "string"}, "gate_reason": {"type": "string"}, "reason": _TEXT,
        "context_summary": _TEXT, "urgency": {"type": "string"}, "status": {"enum": selectors.STATUSES},
        "requested_at": _TIME, "sla_due_at": _TIME, "sla_overdue": {"type": "boolean"}, "expires_at": _TIME,
        "grant": {"type": ["object", "null"]}, "decided_by": _TEXT, "decided_by_key": _TEXT,
        "decided_at": {"type": ["string", "null"], "format": "date-time"}, "comment": _TEXT, "decision": _TEXT,
        "result": _TEXT,
    },
    "required": ["id", "run_id", "kind", "tool", "tool_use_id", "arguments", "arguments_sha256", "gate_reason", "reason",
                 "context_summary", "urgency", "status", "requested_at", "sla_due_at", "sla_overdue", "expires_at", "grant",
                 "decided_by", "decided_by_key", "decided_at", "comment", "decision", "result"],
    "additionalProperties": False,
}


def _escalation_or_404(api: ApiContext, escalation_id: str) -> Escalation:
    try:
        return selectors.escalation_get(tenant=api.tenant, escalation_id=escalation_id)
    except Escalation.DoesNotExist:
        raise ApiError(404, "not_found", "No such escalation.")


@api_view(
    scope="escalations",
    query={"status": {"enum": selectors.STATUSES, "default": "pending"},
           "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
    response={"GET 200": {"title": "EscalationList", "type": "object", "properties": {"data": {"type": "array", "items": ESCALATION_SCHEMA},
                                                           "count": {"type": "integer"}},
                          "required": ["data", "count"], "additionalProperties": False}},
)
def escalations_list(request: HttpRequest, api: ApiContext) -> HttpResponse:
    """Escalations of one status (pending first by urgency and age)."""
    status = request.GET.get("status", EscalationStatus.PENDING)
    if status not in selectors.STATUSES:
        raise ApiError(400, "invalid_request", f"status must be one of {', '.join(selectors.STATUSES)}.")
    raw_limit = request.GET.get("limit", "50")
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 0 < int(raw_limit) <= MAX_LIMIT:
        raise ApiError(400, "invalid_request", f"limit must be an integer from 1 to {MAX_LIMIT}.")
    if status == EscalationStatus.PENDING:
        qs = selectors.escalations_pending(tenant=api.tenant)
    else:
        qs = selectors.escalations_history(tenant=api.tenant, filters=selectors.HistoryFilters(status=status))
    rows = list(qs.select_related("grant", "grant__agent", "decided_by", "decided_by_key")[: int(raw_limit)])
    return JsonResponse({"data": [selectors.escalation_as_dict(e) for e in rows], "count": len(rows)})


@api_view(scope="escalations", response={"GET 200": ESCALATION_SCHEMA})
def escalations_detail(request: HttpRequest, api: ApiContext, escalation_id: str) -> HttpResponse:
    """One escalation, its arguments redacted, with the arguments_sha256 to approve against."""
    return JsonResponse(selectors.escalation_as_dict(_escalation_or_404(api, escalation_id)))


DECIDE_BODY = {
    "title": "EscalationDecision",
    "type": "object",
    "properties": {
        # approve / reject; for an outcome_unknown escalation: retry / mark_done / fail.
        "decision": {"enum": list(services.ALL_DECISIONS)},
        "comment": {"type": "string", "maxLength": services.MAX_COMMENT_CHARS},
        "arguments_sha256": {"type": "string", "maxLength": 64},
        "arguments": {"type": "object"},
        "result": {"type": "string", "maxLength": 100_000},  # mark_done: what the model is told the call returned
    },
    "required": ["decision"],
    "additionalProperties": False,
}


@api_view(scope="escalations", methods=("POST",), body=DECIDE_BODY, response={"POST 200": ESCALATION_SCHEMA})
def escalations_decide(request: HttpRequest, api: ApiContext, escalation_id: str) -> HttpResponse:
    """Decide: approve or reject; retry, mark_done or fail an outcome_unknown escalation (409 on a second decision)."""
    escalation = _escalation_or_404(api, escalation_id)
    body = api.body
    decision = body["decision"]
    shown = body.get("arguments_sha256")
    if decision in ("approve", "retry") and not shown:
        raise ApiError(400, "invalid_request", f"Deciding {decision} needs 'arguments_sha256': the hash of the arguments you reviewed.")
    if "arguments" in body:
        # A caller that sends arguments is approving those: they must be exactly the gated ones.
        from agentops.tools.registry import arguments_sha256

        if arguments_sha256(body["arguments"]) != escalation.arguments_sha256:
            raise ApiError(409, "arguments_mismatch", "These arguments are not the gated call's; nothing was decided.")
    try:
        escalation = services.escalation_decide(
            escalation_id=escalation.pk, tenant=api.tenant, decision=decision, comment=body.get("comment") or "",
            actor=None, actor_key=api.key, arguments_sha256=shown, result=body.get("result"),
        )
    except services.AlreadyDecided as exc:
        raise ApiError(409, exc.code, str(exc))
    except services.ArgumentsMismatch as exc:
        raise ApiError(409, exc.code, str(exc))
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    except Escalation.DoesNotExist:
        raise ApiError(404, "not_found", "No such escalation.")
    escalation = selectors.escalation_get(tenant=api.tenant, escalation_id=escalation.pk)
    return JsonResponse(selectors.escalation_as_dict(escalation))
