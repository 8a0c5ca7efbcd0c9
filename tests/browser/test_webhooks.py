"""The Webhooks settings page in a real browser: a refused URL, the secret shown once, rotation."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tenants.models import WebhookDelivery
from tenants.webhooks import webhook_deliver, webhook_send
from tests.browser.test_console import log_in

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[tuple[int, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield httpd.server_address[1], received
    httpd.shutdown()
    httpd.server_close()


def test_an_admin_sets_a_webhook_and_rotates_its_secret(page, tenant, members, receiver, settings, screenshot):
    port, received = receiver
    log_in(page, "acme-admin")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.click("nav.sidenav >> text=Webhooks")
    page.fill("input[name=url]", "http://169.254.169.254/latest/meta-data/")
    page.click("text=Add endpoint")
    assert "link-local" in page.locator("#url-error").inner_text()
    screenshot(page, "webhooks-refused")

    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = ["127.0.0.1/32"]  # the test receiver only
    page.fill("input[name=url]", f"http://127.0.0.1:{port}/hook")
    page.click("text=Add endpoint")
    first = page.locator("#new-secret code").inner_text()
    assert first.startswith("whsec_")

    for delivery in webhook_send(tenant=tenant, event="budget.threshold", payload={"text": "Acme at 80%"}):
        webhook_deliver(delivery.pk, sleep=lambda s: None)
    settings.WEBHOOK_UNSAFE_ALLOW_NETWORKS = []
    WebhookDelivery.objects.create(tenant=tenant, event="escalation.created", url="http://10.0.0.7/x",
                                   status=WebhookDelivery.REFUSED, last_error="address 10.0.0.7 is a private address")
    headers, body = received[-1]
    assert Webhook(first).verify(body, headers)["text"] == "Acme at 80%"

    page.locator("#endpoints button", has_text="Rotate secret").click()
    second = page.locator("#new-secret code").inner_text()
    assert second.startswith("whsec_") and second != first
    assert page.locator("#deliveries tr[data-status=delivered]").count() == 1
    assert "private address" in page.locator("#deliveries tr[data-status=refused]").inner_text()
    screenshot(page, "webhooks")
    page.goto("/t/acme/settings/webhooks/")  # back to the page: the secret is not shown again
    assert page.locator("#new-secret").count() == 0 and second not in page.content()
