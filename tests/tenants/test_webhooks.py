"""Webhook endpoints: the SSRF guard at save and at delivery, Standard Webhooks signatures, rotation.

A real receiver (``http.server`` on 127.0.0.1) takes the deliveries. Loopback is refused like any
internal address, so the tests that deliver to it list 127.0.0.1/32 in
``WEBHOOK_UNSAFE_ALLOW_NETWORKS`` (empty by default); every other check still runs, and the tests
that prove refusals run with the list empty. Names resolve through ``agentops.netguard.RESOLVER``,
swapped for a table here; names missing from it (``localhost``) go to the system resolver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agentops import netguard
from tenants.models import AuditEvent, Role, WebhookDelivery, WebhookEndpoint
from tenants.services import webhook_endpoint_create, webhook_endpoint_delete, webhook_endpoint_rotate
from tenants.webhooks import webhook_deliver, webhook_send, webhook_url_check

pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.215.14"
SECRET_RE = re.compile(r"whsec_[A-Za-z0-9+/=]+")


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 204
        self.port = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), body))
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A resolver table the test may change (rebinding); unknown names use the system resolver."""
    table: dict[str, list[str]] = {
        "hooks.example.com": [PUBLIC_IP],
        "internal.hooks.test": ["10.0.0.5"],
        "metadata.hooks.test": ["169.254.169.254"],
        "mixed.hooks.test": [PUBLIC_IP, "127.0.0.1"],
        "mapped.hooks.test": ["::ffff:127.0.0.1"],
        "cgnat.hooks.test": ["100.64.0.1"],
        "receiver.hooks.test": ["127.0.0.1"],
        "receiver-and-private.hooks.test": ["127.0.0.1", "10.0.0.5"],
    }

    def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        if host.endswith(".test"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return netguard.system_resolve(host, port)

    monkeypatch.setattr(netguard, "RESOLVER", resolve)
    return table


@pytest.fixture
def loopback_receiver_allowed(settings: Any) -> None:
    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = ["127.0.0.1/32"]


def _deliver(delivery: WebhookDelivery, **kwargs: Any) -> str:
    return webhook_deliver(delivery.pk, sleep=lambda s: None, **kwargs)


def _send(tenant: Any, event: str = "budget.threshold", **payload: Any) -> WebhookDelivery:
    [delivery] = webhook_send(tenant=tenant, event=event, payload={"text": "Acme at 80%", **payload})
    return delivery


# --- Refused at save ------------------------------------------------------------------------

REFUSED_AT_SAVE = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://127.9.9.9/", "loopback"),
    ("http://localhost/", "loopback"),  # the system resolver: /etc/hosts
    ("http://localhost:9000/hook", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.1.2.3/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1:8443/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://100.64.0.1/", "not a public address"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "240.0.0.1 is a"),  # reserved (Python files 240/4 under private)
    ("http://[::ffff:127.0.0.1]/", "embedded in IPv6"),
    ("http://[::ffff:a9fe:a9fe]/", "embedded in IPv6"),
    ("http://2130706433/", "non-canonical"),
    ("http://0x7f.1/", "non-canonical"),
    ("http://internal.hooks.test/", "10.0.0.5"),
    ("https://metadata.hooks.test/", "169.254.169.254"),
    ("http://mixed.hooks.test/", "127.0.0.1"),
    ("http://mapped.hooks.test/", "embedded in IPv6"),
    ("http://cgnat.hooks.test/", "100.64.0.1"),
    ("http://receiver.hooks.test:8080/", "loopback"),
    ("http://nowhere.hooks.test/", "does not resolve"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://hooks.example.com/", "scheme"),
    ("http://user:pw@hooks.example.com/", "credentials"),
    ("hooks.example.com/x", "scheme"),
    ("", "non-empty"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_AT_SAVE, ids=[u or "empty" for u, _ in REFUSED_AT_SAVE])
def test_an_internal_or_odd_url_is_refused_at_save(url: str, reason: str, tenant: Any, dns: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        webhook_endpoint_create(tenant=tenant, actor=None, url=url)
    message = " ".join(exc.value.messages)
    assert message.startswith("This URL cannot receive webhooks") and reason in message, message
    assert not WebhookEndpoint.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="webhook.").exists()


@pytest.mark.parametrize(
    ("url", "reason"),
    [("http://169.254.169.254/latest/meta-data/", "link-local"), ("http://localhost:8000/hook", "loopback"), ("http://[::1]/", "loopback")],
)
def test_the_console_shows_why_a_url_is_refused(url: str, reason: str, tenant: Any, members: Any, client_for: Any, dns: Any) -> None:
    resp = client_for(members[Role.ADMIN]).post(f"/t/{tenant.slug}/settings/webhooks/", {"url": url})
    assert resp.status_code == 400
    error = re.search(r'<p class="error" role="alert" id="url-error">(.*?)</p>', resp.content.decode())
    assert error and "cannot receive webhooks" in error.group(1) and reason in error.group(1)
    assert not WebhookEndpoint.objects.exists()


def test_the_allow_list_exempts_only_what_it_lists(tenant: Any, dns: Any, loopback_receiver_allowed: None) -> None:
    webhook_url_check("http://127.0.0.1:8080/hook")
    webhook_url_check("http://receiver.hooks.test:8080/hook")
    for url in (
        "http://127.0.0.2:8080/",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]:8080/",  # the same address in IPv6 form is not what was listed
        "http://receiver-and-private.hooks.test/",
        "http://169.254.169.254/",
        "http://internal.hooks.test/",
    ):
        with pytest.raises(ValidationError):
            webhook_url_check(url)


def test_fetch_url_and_webhooks_share_one_guard() -> None:
    from agentops.tools import net

    assert net.forbidden_reason is netguard.forbidden_reason
    assert net.Target is netguard.Target


# --- Refused at delivery --------------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_stored_loopback_url_is_refused_at_delivery_and_nothing_is_sent(host: str, tenant: Any, receiver: Receiver) -> None:
    # As a URL saved before the guard existed (the migration carries old URLs over) would be.
    WebhookEndpoint.objects.create(tenant=tenant, url=f"http://{host}:{receiver.port}/hook")
    delivery = _send(tenant)
    assert _deliver(delivery) == "refused"
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.REFUSED and delivery.attempts == 0
    assert "loopback" in delivery.last_error and delivery.response_status is None
    assert receiver.received == []


def test_a_name_that_rebinds_to_loopback_after_save_is_refused_at_delivery(tenant: Any, receiver: Receiver, dns: Any) -> None:
    dns["rebind.hooks.test"] = [PUBLIC_IP]
    webhook_endpoint_create(tenant=tenant, actor=None, url=f"http://rebind.hooks.test:{receiver.port}/hook")
    dns["rebind.hooks.test"] = ["127.0.0.1"]
    delivery = _send(tenant)
    assert _deliver(delivery) == "refused"
    delivery.refresh_from_db()
    assert "resolves to 127.0.0.1, which is a loopback address" in delivery.last_error
    assert receiver.received == []


def test_a_refused_delivery_is_shown_with_its_reason(tenant: Any, members: Any, client_for: Any) -> None:
    WebhookEndpoint.objects.create(tenant=tenant, url="http://169.254.169.254/latest/meta-data/")
    _deliver(_send(tenant, event="escalation.created"))
    page = client_for(members[Role.ADMIN]).get(f"/t/{tenant.slug}/settings/webhooks/").content.decode()
    row = re.search(r'<tr data-status="refused">(.*?)</tr>', page, re.S)
    assert row and "escalation.created" in row.group(1) and "link-local" in row.group(1)
    assert "refused (unsafe address)" in row.group(1)


# --- Signed deliveries ----------------------------------------------------------------------

def test_a_receiver_verifies_a_delivery_with_the_standard_webhooks_library(
    tenant: Any, receiver: Receiver, dns: Any, loopback_receiver_allowed: None
) -> None:
    # receiver.hooks.test exists only in the test resolver: the request can reach the receiver
    # only through the address the guard vetted (pinned), never a second lookup.
    endpoint, secret = webhook_endpoint_create(tenant=tenant, actor=None, url=f"http://receiver.hooks.test:{receiver.port}/hook?x=1")
    assert secret.startswith("whsec_") and secret == endpoint.secret
    delivery = _send(tenant, scope="tenant_month")
    at = datetime.now(UTC).replace(microsecond=0)
    assert _deliver(delivery, now=lambda: at) == "delivered"
    [(path, headers, body)] = receiver.received
    assert path == "/hook?x=1" and headers["Host"] == f"receiver.hooks.test:{receiver.port}"
    assert headers["webhook-id"] == f"msg_{delivery.pk}"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")
    payload = Webhook(secret).verify(body, headers)
    assert payload["text"] == "Acme at 80%" and payload["scope"] == "tenant_month" and payload["event"] == "budget.threshold"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"80%", b"10%"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(WebhookEndpoint(tenant=tenant).secret).verify(body, headers)  # some other secret


def test_every_endpoint_gets_its_own_signature(tenant: Any, receiver: Receiver, loopback_receiver_allowed: None) -> None:
    _, first = webhook_endpoint_create(tenant=tenant, actor=None, url=f"http://127.0.0.1:{receiver.port}/a")
    _, second = webhook_endpoint_create(tenant=tenant, actor=None, url=f"http://127.0.0.1:{receiver.port}/b")
    deliveries = webhook_send(tenant=tenant, event="escalation.created", payload={})
    assert [_deliver(d) for d in deliveries] == ["delivered", "delivered"]
    by_path = {path: (headers, body) for path, headers, body in receiver.received}
    Webhook(first).verify(by_path["/a"][1], by_path["/a"][0])
    Webhook(second).verify(by_path["/b"][1], by_path["/b"][0])
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(by_path["/b"][1], by_path["/b"][0])


def test_a_redirect_is_not_followed(tenant: Any, receiver: Receiver, loopback_receiver_allowed: None) -> None:
    receiver.status = 302
    webhook_endpoint_create(tenant=tenant, actor=None, url=f"http://127.0.0.1:{receiver.port}/hook")
    delivery = _send(tenant)
    assert _deliver(delivery) == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error == "HTTP 302 (redirects are not followed)" and delivery.attempts == 4


# --- The console: create, see the secret once, rotate, delete --------------------------------

def test_an_admin_creates_rotates_and_deletes_an_endpoint(
    tenant: Any, members: Any, client_for: Any, receiver: Receiver, loopback_receiver_allowed: None
) -> None:
    client = client_for(members[Role.ADMIN])
    url = f"/t/{tenant.slug}/settings/webhooks/"
    resp = client.post(url, {"url": f"http://127.0.0.1:{receiver.port}/hook", "tenant": "999", "secret": "whsec_AAAA"})
    assert resp.status_code == 200 and "no-cache" in resp["Cache-Control"]
    [old_secret] = SECRET_RE.findall(resp.content.decode())
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.tenant_id == tenant.pk and endpoint.secret == old_secret and endpoint.created_by == members[Role.ADMIN]
    assert SECRET_RE.findall(client.get(url).content.decode()) == []  # shown once

    assert _deliver(_send(tenant)) == "delivered"
    Webhook(old_secret).verify(receiver.received[-1][2], receiver.received[-1][1])

    resp = client.post(f"{url}{endpoint.pk}/rotate/")
    assert resp.status_code == 200 and "no-cache" in resp["Cache-Control"]
    [new_secret] = SECRET_RE.findall(resp.content.decode())
    assert new_secret != old_secret
    assert SECRET_RE.findall(client.get(url).content.decode()) == []

    assert _deliver(_send(tenant)) == "delivered"
    _, headers, body = receiver.received[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, headers)  # the old secret stops working at once
    assert Webhook(new_secret).verify(body, headers)["text"] == "Acme at 80%"

    pending = _send(tenant)
    resp = client.post(f"{url}{endpoint.pk}/delete/")
    assert resp.status_code == 302 and not WebhookEndpoint.objects.exists()
    assert _deliver(pending) == "skipped" and len(receiver.received) == 2
    assert list(AuditEvent.objects.order_by("at", "id").values_list("action", "actor")) == [
        ("webhook.create", members[Role.ADMIN].pk), ("webhook.rotate", members[Role.ADMIN].pk), ("webhook.delete", members[Role.ADMIN].pk),
    ]


def test_an_admin_cannot_touch_another_tenants_endpoint(tenant: Any, other_tenant: Any, outsider: Any, client_for: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.com/acme")
    client = client_for(outsider)
    assert client.post(f"/t/{other_tenant.slug}/settings/webhooks/{endpoint.pk}/rotate/").status_code == 404
    assert client.post(f"/t/{other_tenant.slug}/settings/webhooks/{endpoint.pk}/delete/").status_code == 404
    with pytest.raises(WebhookEndpoint.DoesNotExist):
        webhook_endpoint_rotate(tenant=other_tenant, actor=outsider, endpoint_id=endpoint.pk)
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.FINANCE, Role.PROMPT_EDITOR, Role.VIEWER])
def test_only_admins_see_or_change_webhooks(role: str, tenant: Any, members: Any, client_for: Any) -> None:
    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.com/acme")
    client = client_for(members[role])
    assert client.get(f"/t/{tenant.slug}/settings/webhooks/").status_code == 403
    assert client.post(f"/t/{tenant.slug}/settings/webhooks/", {"url": "https://hooks.example.com/x"}).status_code == 403
    assert client.post(f"/t/{tenant.slug}/settings/webhooks/{endpoint.pk}/rotate/").status_code == 403
    assert WebhookEndpoint.objects.get().secret == endpoint.secret


def test_a_tenant_has_at_most_five_endpoints(tenant: Any, dns: Any) -> None:
    for n in range(WebhookEndpoint.MAX_PER_TENANT):
        webhook_endpoint_create(tenant=tenant, actor=None, url=f"https://hooks.example.com/{n}")
    with pytest.raises(ValidationError, match="at most 5"):
        webhook_endpoint_create(tenant=tenant, actor=None, url="https://hooks.example.com/6")


def test_secrets_reach_no_log_and_no_audit_row(
    tenant: Any, members: Any, receiver: Receiver, loopback_receiver_allowed: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = members[Role.ADMIN]
    endpoint, first = webhook_endpoint_create(tenant=tenant, actor=admin, url=f"http://127.0.0.1:{receiver.port}/hook")
    _deliver(_send(tenant))
    _, second = webhook_endpoint_rotate(tenant=tenant, actor=admin, endpoint_id=endpoint.pk)
    receiver.status = 500
    assert _deliver(_send(tenant)) == "failed"  # logs a warning
    endpoint.url = "http://10.0.0.1/hook"
    endpoint.save()
    assert _deliver(_send(tenant)) == "refused"  # logs a warning
    webhook_endpoint_delete(tenant=tenant, actor=admin, endpoint_id=endpoint.pk)
    assert len(caplog.records) >= 2
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    audit = json.dumps(list(AuditEvent.objects.values("target_repr", "before", "after")))
    for secret in (first, second):
        assert secret not in logged and secret[6:] not in logged
        assert secret not in audit and secret[6:] not in audit
    assert "whsec_" not in audit and "/hook" not in audit  # a URL's path can be a credential


def test_redaction_masks_a_webhook_secret() -> None:
    from agentops.redact import redact

    secret = WebhookEndpoint().secret
    assert redact(f"oops {secret} leaked") == "oops [REDACTED] leaked"


# --- Django admin and deploy checks ---------------------------------------------------------

def test_deliveries_and_endpoints_are_in_django_admin_without_the_secret(tenant: Any) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    endpoint = WebhookEndpoint.objects.create(tenant=tenant, url="https://hooks.example.com/acme")
    WebhookDelivery.objects.create(tenant=tenant, endpoint=endpoint, event="budget.threshold", url=endpoint.url,
                                   status=WebhookDelivery.REFUSED, last_error="address 10.0.0.1 is a private address")
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "pw-root-123")
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/tenants/webhookdelivery/")
    assert page.status_code == 200 and "budget.threshold" in page.content.decode() and "10.0.0.1 is a private" in page.content.decode()
    for path in ("/admin/tenants/webhookendpoint/", f"/admin/tenants/webhookendpoint/{endpoint.pk}/change/"):
        resp = client.get(path)
        assert resp.status_code == 200 and endpoint.secret not in resp.content.decode() and "whsec_" not in resp.content.decode()


def test_check_deploy_warns_when_the_allow_list_is_set(settings: Any) -> None:
    from django.conf import settings as configured
    from django.core.checks import run_checks

    assert configured.WEBHOOK_UNSAFE_ALLOW_NETWORKS == []  # empty unless a test sets it
    assert "tenants.W001" not in {m.id for m in run_checks(include_deployment_checks=True)}
    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = ["127.0.0.1/32"]
    assert "tenants.W001" in {m.id for m in run_checks(include_deployment_checks=True)}
    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = ["not-a-network"]
    assert "tenants.E001" in {m.id for m in run_checks()}


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_a_tenants_webhook_url_and_signing_key_over() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("tenants", "0003_invitation")], [("tenants", "0004_webhook_endpoints")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    tier = old.get_model("tenants", "Tier").objects.create(slug="mig", name="Mig")
    old_secret = "ab" * 32
    Tenant = old.get_model("tenants", "Tenant")
    with_url = Tenant.objects.create(slug="hooked", name="Hooked", tier=tier, webhook_url="https://hooks.example.com/x", webhook_secret=old_secret)
    Tenant.objects.create(slug="quiet", name="Quiet", tier=tier, webhook_url="", webhook_secret="cd" * 32)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    # Going back to 0003 also unapplied what depends on tenants 0004 (escalations 0001): reapply
    # everything, so the tests after this one find the latest schema.
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    [endpoint] = WebhookEndpoint.objects.all()
    assert endpoint.tenant_id == with_url.pk and endpoint.url == "https://hooks.example.com/x"
    # The same HMAC key, in the whsec_ form: a receiver holding the old hex secret can still verify.
    at = datetime(2026, 1, 1, tzinfo=UTC)
    mac = hmac.new(old_secret.encode(), f"msg_1.{int(at.timestamp())}.{{}}".encode(), hashlib.sha256).digest()
    assert Webhook(endpoint.secret).sign("msg_1", at, "{}") == "v1," + base64.b64encode(mac).decode()


def test_the_escalation_inbox_lists_refused_notifications(tenant: Any, members: Any, client_for: Any) -> None:
    WebhookEndpoint.objects.create(tenant=tenant, url="http://[::1]/hook")
    _deliver(_send(tenant, event="escalation.created"))
    page = client_for(members[Role.OPERATOR]).get(f"/t/{tenant.slug}/escalations/").content.decode()
    banner = re.search(r'<div class="banner warn" id="webhook-failures">(.*?)</div>', page, re.S)
    assert banner and "failed or refused" in banner.group(1) and "loopback" in banner.group(1)
