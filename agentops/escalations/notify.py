"""Notifications about escalations: one signed JSON webhook per endpoint of the tenant, Slack-compatible.

Events: ``escalation.created``, ``escalation.expiring``, ``escalation.decided`` (approved,
rejected, expired). The body carries a ``text`` field (Slack incoming webhooks show it as is)
and the structured ``escalation`` object. Delivery, signing, retries with backoff and the
``WebhookDelivery`` record are ``tenants.webhooks.webhook_send``'s job; nothing here may break
the harness or a decision, so every send runs after commit and failures are only logged.

Arguments leave the platform here (to Slack or a customer endpoint), so they are redacted.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from agentops.escalations.jobs import escalation_expire_job, escalation_expiring_job
from agentops.escalations.models import Escalation
from agentops.jobs import enqueue_in
from agentops.redact import redact, redact_obj
from tenants.webhooks import webhook_send

log = logging.getLogger(__name__)


def escalation_created(escalation: Escalation) -> None:
    """Hook called once when an escalation opens: notify, and schedule its expiry on time."""
    esc_id = escalation.pk
    transaction.on_commit(lambda: _send(esc_id, "escalation.created"))
    _schedule_expiry(escalation)


def escalation_expiring(escalation: Escalation) -> None:
    _send(escalation.pk, "escalation.expiring")


def escalation_decided(escalation: Escalation) -> None:
    _send(escalation.pk, "escalation.decided")


def _schedule_expiry(escalation: Escalation) -> None:
    """RQ's scheduler runs the expiry exactly when due; the sweep is only the safety net."""
    now = timezone.now()
    until_expiry = max(0.0, (escalation.expires_at - now).total_seconds())
    notice = timedelta(minutes=getattr(settings, "ESCALATION_EXPIRING_NOTICE_MINUTES", 15)).total_seconds()
    try:
        # +0.5 s so the job never runs a hair before expires_at on a skewed clock.
        enqueue_in(until_expiry + 0.5, escalation_expire_job, escalation.pk, queue="default")
        if until_expiry > 2 * notice:
            enqueue_in(until_expiry - notice, escalation_expiring_job, escalation.pk, queue="default")
    except Exception:
        log.exception("could not schedule expiry for escalation %s; the sweep will expire it", escalation.pk)


def console_url(escalation: Escalation) -> str:
    base = str(getattr(settings, "AGENTOPS_BASE_URL", "") or "").rstrip("/")
    try:
        path = reverse("escalations:detail", kwargs={"slug": escalation.tenant.slug, "escalation_id": escalation.pk})
    except NoReverseMatch:
        return ""
    return f"{base}{path}"


def escalation_payload(escalation: Escalation, event: str) -> dict[str, Any]:
    url = console_url(escalation)
    what = "hand-off" if escalation.kind == Escalation.KIND_HANDOFF else f"`{escalation.tool_name}`"
    if event == "escalation.created":
        text = f"[{escalation.urgency}] Approval needed for {what} on run {escalation.run_id}: {escalation.gate_reason}"
    elif event == "escalation.expiring":
        text = f"[{escalation.urgency}] Approval for {what} on run {escalation.run_id} expires at {escalation.expires_at:%Y-%m-%d %H:%M} UTC."
    else:
        by = escalation.decided_by.get_username() if escalation.decided_by else ("an API key" if escalation.decided_by_key_id else "nobody")
        text = f"{what} on run {escalation.run_id} was {escalation.status} by {by}."
        if escalation.comment:
            text += f" Comment: {escalation.comment[:300]}"
    if url:
        text += f" <{url}|Open in AgentOps>"
    return {
        "event": event,
        "text": redact(text),
        "tenant": escalation.tenant.slug,
        "escalation": {
            "id": escalation.pk, "run_id": escalation.run_id, "kind": escalation.kind, "tool": escalation.tool_name,
            "arguments": redact_obj(escalation.arguments), "arguments_sha256": escalation.arguments_sha256,
            "gate_reason": redact(escalation.gate_reason), "reason": redact(escalation.reason), "urgency": escalation.urgency,
            "status": escalation.status, "requested_at": escalation.requested_at.isoformat(),
            "sla_due_at": escalation.sla_due_at.isoformat(), "expires_at": escalation.expires_at.isoformat(),
            "decided_at": escalation.decided_at.isoformat() if escalation.decided_at else None,
            "comment": redact(escalation.comment), "url": url,
        },
    }


def _send(escalation_id: int, event: str) -> None:
    try:
        escalation = Escalation.unscoped.select_related("tenant", "decided_by").get(pk=escalation_id)
        webhook_send(tenant=escalation.tenant, event=event, payload=escalation_payload(escalation, event))
    except Exception:
        log.exception("webhook %s for escalation %s could not be queued", event, escalation_id)
