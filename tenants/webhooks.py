"""Signed webhooks to a tenant's ``webhook_url``.

``webhook_send`` records a :class:`~tenants.models.WebhookDelivery` and enqueues the POST after
commit. The body is JSON with a top-level ``"text"`` (so a Slack incoming-webhook URL works as is).
Each request carries::

    X-AgentOps-Event:      <event>
    X-AgentOps-Delivery:   <delivery id>
    X-AgentOps-Timestamp:  <unix seconds>
    X-AgentOps-Signature:  sha256=<hex HMAC-SHA256(tenant.webhook_secret, "<timestamp>.<body>")>

Receivers recompute the HMAC over the timestamp and the raw body and reject stale timestamps
(replays). Failed attempts are retried with exponential backoff inside the job; every attempt is
recorded (``attempts``, ``response_status``, ``last_error``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from django.utils import timezone

from agentops.jobs import enqueue, survives_db_outage
from agentops.redact import redact
from tenants.models import Tenant, WebhookDelivery

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_S = (1.0, 3.0, 9.0)
TIMEOUT_S = 5.0


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_send(*, tenant: Tenant, event: str, payload: dict[str, Any]) -> WebhookDelivery:
    """Record a delivery and POST it after commit. Without a URL the row is kept as ``skipped``."""
    body = dict(payload)
    body.setdefault("text", f"AgentOps {event}")
    body.setdefault("event", event)
    url = tenant.webhook_url or ""
    delivery = WebhookDelivery.objects.create(
        tenant=tenant, event=event[:64], url=url, payload=body,
        status=WebhookDelivery.PENDING if url else WebhookDelivery.SKIPPED,
    )
    if url:
        enqueue(webhook_deliver, delivery.pk)
    return delivery


@survives_db_outage
def webhook_deliver(delivery_id: int, *, sleep: Any = time.sleep) -> str:
    """The job: POST with retries and backoff; returns the final status."""
    import httpx2

    delivery = WebhookDelivery.unscoped.select_related("tenant").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (WebhookDelivery.DELIVERED, WebhookDelivery.SKIPPED):
        return getattr(delivery, "status", "missing")
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    while delivery.attempts < MAX_ATTEMPTS:
        if delivery.attempts:
            sleep(BACKOFF_S[min(delivery.attempts - 1, len(BACKOFF_S) - 1)])
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AgentOps-Webhooks/1",
            "X-AgentOps-Event": delivery.event,
            "X-AgentOps-Delivery": str(delivery.pk),
            "X-AgentOps-Timestamp": ts,
            "X-AgentOps-Signature": webhook_signature(secret=delivery.tenant.webhook_secret, timestamp=ts, body=body),
        }
        delivery.attempts += 1
        try:
            resp = httpx2.post(delivery.url, content=body, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
            delivery.response_status = resp.status_code
            if 200 <= resp.status_code < 300:
                delivery.status, delivery.delivered_at, delivery.last_error = WebhookDelivery.DELIVERED, timezone.now(), ""
                delivery.save(update_fields=["attempts", "response_status", "status", "delivered_at", "last_error"])
                return delivery.status
            delivery.last_error = f"HTTP {resp.status_code}"
        except Exception as exc:  # any transport failure is retried, then recorded
            delivery.last_error = redact(f"{type(exc).__name__}: {exc}")[:500]
        delivery.save(update_fields=["attempts", "response_status", "last_error"])
    delivery.status = WebhookDelivery.FAILED
    delivery.save(update_fields=["status"])
    log.warning("webhook delivery failed", extra={"delivery": delivery.pk, "event": delivery.event, "tenant": delivery.tenant.slug})
    return delivery.status
