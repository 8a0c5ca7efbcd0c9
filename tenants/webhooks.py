"""Signed webhooks to a tenant's endpoints, behind the same SSRF guard as ``fetch_url``.

``webhook_send`` records one :class:`~tenants.models.WebhookDelivery` per endpoint and enqueues
the POSTs after commit. The body is JSON with a top-level ``"text"`` (so a Slack incoming-webhook
URL works as is). Requests are signed with the `Standard Webhooks <https://www.standardwebhooks.com>`_
scheme, so a receiver verifies with stock code (``standardwebhooks.Webhook(secret).verify(body,
headers)`` in Python, the same library in other languages)::

    webhook-id:         msg_<delivery id>   (the same on every retry of one delivery)
    webhook-timestamp:  <unix seconds>
    webhook-signature:  v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>
    X-AgentOps-Event:   <event>

Every URL goes through :mod:`agentops.netguard` twice: when an admin saves it (so a bad one gets
a clear error) and again before each attempt, resolving the name anew and connecting to the
vetted address itself (so a name that later points inside, or rebinds between lookup and
connect, reaches nothing). A refused delivery is recorded as ``refused`` with the reason and
nothing is sent. ``settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS`` exempts listed networks; it is empty
unless a test sets it.

Transport failures are retried with exponential backoff inside the job; every attempt is recorded
(``attempts``, ``response_status``, ``last_error``). Secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from agentops import netguard
from agentops.jobs import enqueue, survives_db_outage
from agentops.redact import redact
from tenants.models import Tenant, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_S = (1.0, 3.0, 9.0)
TIMEOUT_S = 5.0
MAX_RESPONSE_BYTES = 16 * 1024
USER_AGENT = "AgentOps-Webhooks/2"


def _allow_networks() -> tuple[netguard.IPNetwork, ...]:
    return netguard.parse_networks(getattr(settings, "WEBHOOK_UNSAFE_ALLOW_NETWORKS", []) or [])


def webhook_url_check(url: str) -> netguard.Target:
    """Refuse a webhook URL that is malformed or reaches a non-public address (DNS included).

    Raises ``ValidationError`` with a message fit to show the admin who typed the URL.
    Any port is allowed (receivers often listen on one of their own); the address must be public.
    """
    allow = _allow_networks()
    try:
        target = netguard.parse_url(url, any_port=True, allow_networks=allow)
        netguard.resolve(target, allow_networks=allow)
    except netguard.GuardError as exc:
        raise ValidationError(f"This URL cannot receive webhooks: {exc}.")
    return target


def webhook_sign(*, secret: str, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``, signed with ``secret`` (``whsec_…``) at ``at``."""
    at = at.astimezone(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def webhook_send(*, tenant: Tenant, event: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Record one delivery per endpoint and POST each after commit.

    Without an endpoint one row is kept as ``skipped``, so the console shows that an event
    happened and went nowhere.
    """
    body = dict(payload)
    body.setdefault("text", f"AgentOps {event}")
    body.setdefault("event", event)
    endpoints = list(WebhookEndpoint.objects.for_tenant(tenant).order_by("pk"))
    if not endpoints:
        return [WebhookDelivery.objects.create(tenant=tenant, event=event[:64], url="", payload=body, status=WebhookDelivery.SKIPPED)]
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery.objects.create(
            tenant=tenant, endpoint=endpoint, event=event[:64], url=endpoint.url, payload=body,
            status=WebhookDelivery.PENDING,
        )
        enqueue(webhook_deliver, delivery.pk)
        deliveries.append(delivery)
    return deliveries


def _refuse(delivery: WebhookDelivery, reason: str) -> str:
    delivery.status, delivery.last_error = WebhookDelivery.REFUSED, redact(reason)[:500]
    delivery.save(update_fields=["status", "last_error"])
    log.warning(
        "webhook delivery refused by the SSRF guard",
        extra={"delivery": delivery.pk, "event": delivery.event, "tenant": delivery.tenant.slug},
    )
    return delivery.status


@survives_db_outage
def webhook_deliver(
    delivery_id: int, *, sleep: Callable[[float], Any] = time.sleep, now: Callable[[], datetime] = timezone.now
) -> str:
    """The job: vet the URL, POST with retries and backoff; returns the final status."""
    delivery = WebhookDelivery.unscoped.select_related("tenant", "endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.PENDING:
        return getattr(delivery, "status", "missing")
    if delivery.endpoint is None:  # deleted after the event: nobody to tell
        delivery.status, delivery.last_error = WebhookDelivery.SKIPPED, "the endpoint was deleted"
        delivery.save(update_fields=["status", "last_error"])
        return delivery.status
    allow = _allow_networks()
    try:
        target = netguard.parse_url(delivery.url, any_port=True, allow_networks=allow)
    except netguard.GuardError as exc:
        return _refuse(delivery, str(exc))
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True, default=str).encode()
    while delivery.attempts < MAX_ATTEMPTS:
        if delivery.attempts:
            sleep(BACKOFF_S[min(delivery.attempts - 1, len(BACKOFF_S) - 1)])
        try:
            # Resolved anew for every attempt and connected to by address: what was vetted is what is reached.
            addresses = netguard.resolve(target, allow_networks=allow)
        except netguard.ForbiddenURL as exc:
            return _refuse(delivery, str(exc))
        except netguard.GuardError as exc:  # DNS failures are worth retrying
            delivery.attempts += 1
            delivery.last_error = redact(str(exc))[:500]
            delivery.save(update_fields=["attempts", "last_error"])
            continue
        # Re-read each attempt: after a rotation, retries are signed with the new secret.
        secret = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id).values_list("secret", flat=True).first()
        if secret is None:
            delivery.status, delivery.last_error = WebhookDelivery.SKIPPED, "the endpoint was deleted"
            delivery.save(update_fields=["status", "last_error"])
            return delivery.status
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-AgentOps-Event": delivery.event,
            **webhook_sign(secret=secret, msg_id=f"msg_{delivery.pk}", at=now(), body=body),
        }
        delivery.attempts += 1
        try:
            resp = netguard.pinned_request(
                target, addresses[0], method="POST", headers=headers, body=body,
                timeout=TIMEOUT_S, max_bytes=MAX_RESPONSE_BYTES,
            )
            delivery.response_status = resp.status
            if 200 <= resp.status < 300:
                delivery.status, delivery.delivered_at, delivery.last_error = WebhookDelivery.DELIVERED, timezone.now(), ""
                delivery.save(update_fields=["attempts", "response_status", "status", "delivered_at", "last_error"])
                return delivery.status
            delivery.last_error = f"HTTP {resp.status}" + (" (redirects are not followed)" if 300 <= resp.status < 400 else "")
        except Exception as exc:  # any transport failure is retried, then recorded
            delivery.last_error = redact(f"{type(exc).__name__}: {exc}")[:500]
        delivery.save(update_fields=["attempts", "response_status", "last_error"])
    delivery.status = WebhookDelivery.FAILED
    delivery.save(update_fields=["status"])
    log.warning("webhook delivery failed", extra={"delivery": delivery.pk, "event": delivery.event, "tenant": delivery.tenant.slug})
    return delivery.status
