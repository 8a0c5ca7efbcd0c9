"""An operator approves one escalation and rejects another in headless Chromium, and sees both
runs move on — live_server, real rqworker processes, PostgreSQL and Redis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentops.escalations.models import Escalation
from agentops.toolbox.models import Refund, SentEmail
from runs.models import Run, RunStatus
from runs.services import run_submit
from tenants.models import Role
from tests.browser.conftest import watch_csp
from tests.escalations.conftest import tool_results
from tests.factories import PASSWORD
from tests.workers import wait_for, workers

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop in this thread

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            chromium.close()


def _submit(agent, scenario: str) -> Run:  # type: ignore[no-untyped-def]
    return run_submit(tenant=agent.tenant, agent=agent, input="Help the customer.", role=Role.OPERATOR, metadata={"scenario": scenario})


def _waiting(run: Run) -> Escalation:
    wait_for(lambda: Run.objects.get(pk=run.pk).status == RunStatus.AWAITING_APPROVAL, timeout=60, message=f"run {run.pk} to wait")
    return Escalation.objects.get(run=run, status="pending")


def test_operator_approves_and_rejects_in_the_browser(browser, live_server, agent, members):
    agent.tenant.gate_irreversible_tools = False
    agent.tenant.save()
    operator = members[Role.OPERATOR]
    with workers(2):
        email_run, refund_run = _submit(agent, "email_customer"), _submit(agent, "refund_over_limit")
        email, refund = _waiting(email_run), _waiting(refund_run)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        page = context.new_page()
        violations = watch_csp(page)
        try:
            page.goto("/login/")
            page.fill("input[name=username]", operator.username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto("/t/acme/escalations/")
            page.wait_for_selector(f'tr[data-escalation="{email.pk}"]')
            page.wait_for_selector(f'tr[data-escalation="{refund.pk}"]')
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "escalations-inbox.png"), full_page=True)

            # Approve the e-mail: the decision panel swaps in (no page load) and follows the run.
            page.click(f'tr[data-escalation="{email.pk}"] td.actions a')
            page.wait_for_selector("#approve")
            assert "customer@example.com" in page.inner_text("#arguments")
            page.evaluate("window.__no_reload = true")
            page.click("#approve")
            page.wait_for_selector("#decision-outcome:has-text('approved')")
            page.wait_for_selector('[data-run-status="succeeded"]', timeout=60_000)
            assert page.evaluate("window.__no_reload") is True  # htmx swapped the fragment; no full reload
            page.screenshot(path=str(SCREENSHOTS / "escalations-approved.png"), full_page=True)

            # Reject the refund with a reason; the run continues without it.
            page.goto("/t/acme/escalations/")
            assert page.locator(f'tr[data-escalation="{email.pk}"]').count() == 0
            page.click(f'tr[data-escalation="{refund.pk}"] td.actions a')
            page.fill("#decision-comment", "Refunds over $100 need a manager's sign-off.")
            page.click("#reject")
            page.wait_for_selector("#decision-outcome:has-text('rejected')")
            page.wait_for_selector('[data-run-status="succeeded"]', timeout=60_000)
            page.screenshot(path=str(SCREENSHOTS / "escalations-rejected.png"), full_page=True)
        finally:
            context.close()
    assert violations == [], f"the Content-Security-Policy blocked something: {violations}"
    email_run.refresh_from_db()
    refund_run.refresh_from_db()
    assert email_run.status == refund_run.status == RunStatus.SUCCEEDED
    assert SentEmail.objects.filter(run_id=email_run.pk).count() == 1
    assert Refund.objects.filter(run_id=refund_run.pk).count() == 0
    result = next(r for r in tool_results(refund_run) if r["tool_use_id"] == refund.tool_use_id)
    assert result["is_error"] and "need a manager's sign-off" in result["content"]
