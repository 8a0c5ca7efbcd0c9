"""What the page shows after a change, without a reload: every htmx swap also updates what depends on it.

The runs are moved along in the database (no worker), as a worker would; the page must follow.
"""

from __future__ import annotations

import re

import pytest

from agentops.escalations.models import Escalation
from agentops.escalations.services import _hash
from runs.models import Run, RunStatus
from tenants.models import Role
from tests.browser.test_console import log_in
from tests.runs_console.factories import AgentFactory, EscalationFactory, RunFactory

pytestmark = pytest.mark.browser


def _waiting_escalation(agent, members) -> Escalation:  # type: ignore[no-untyped-def]
    run = RunFactory(agent=agent, status=RunStatus.AWAITING_APPROVAL, outcome="", submitted_by=members[Role.OPERATOR])
    arguments = {"account_id": "ACC-1001", "amount": "900.00"}
    return EscalationFactory(run=run, arguments=arguments, arguments_sha256=_hash(arguments))


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_deciding_updates_the_status_the_sla_and_the_run_above_the_panel(page, tenant, members, screenshot, decision):
    agent = AgentFactory(tenant=tenant, name="support")
    escalation = _waiting_escalation(agent, members)
    run = escalation.run
    log_in(page, "acme-operator")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.goto(f"/t/acme/escalations/{escalation.pk}/")
    assert page.inner_text("#escalation-status") == "pending"
    assert page.locator("#escalation-sla").count() == 1
    assert page.get_attribute("[data-summary-run-status]", "data-summary-run-status") == "awaiting_approval"
    page.evaluate("window.__no_reload = true")

    if decision == "reject":
        page.fill("#decision-comment", "Over the limit without a manager.")
    page.click(f"#{decision}")
    expected = "approved" if decision == "approve" else "rejected"
    page.wait_for_selector(f"#decision-outcome:has-text('{expected}')")
    # Everything above the panel moved with the decision: no pending badge, no SLA timer, the run resumed.
    assert page.inner_text("#escalation-status") == expected
    assert page.locator("#escalation-sla").count() == 0
    assert "ago)" not in page.inner_text("#escalation-run")
    assert page.get_attribute("[data-summary-run-status]", "data-summary-run-status") != "awaiting_approval"

    # The worker finishes the run: the summary follows the run-progress poll.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, outcome="end_turn", iterations=3)
    page.wait_for_selector('[data-summary-run-status="succeeded"]', timeout=15_000)
    page.wait_for_selector('[data-run-status="succeeded"]')
    assert "3 model calls" in page.inner_text("#escalation-run")
    assert page.evaluate("window.__no_reload") is True
    screenshot(page, f"escalation-after-{decision}")


def test_the_run_page_drops_a_stale_flash_and_the_cancel_button_when_the_run_ends(page, tenant, members, screenshot):
    agent = AgentFactory(tenant=tenant, name="support")
    log_in(page, "acme-operator")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    # Started from the console: the flash says it is queued, the page offers Cancel.
    page.goto(f"/t/acme/runs/new/?agent={agent.pk}")
    page.fill("textarea[name=input]", "Where is my parcel?")
    page.click("text=Start run")
    page.wait_for_url(re.compile(r"/t/acme/runs/\d+/$"))
    run = Run.objects.get(tenant=tenant, input="Where is my parcel?")
    assert f"Run {run.pk} queued." in page.inner_text("#flash")
    assert page.locator("#run-cancel").count() == 1
    page.evaluate("window.__no_reload = true")

    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED, outcome="end_turn", lease_owner="")
    page.wait_for_selector("#run-live[data-status=succeeded]", timeout=15_000)
    assert page.inner_text("#flash").strip() == ""  # "queued" is no longer true
    assert page.locator("#run-cancel").count() == 0
    assert page.locator(".run-actions button", has_text="Cancel").count() == 0
    assert page.evaluate("window.__no_reload") is True
    screenshot(page, "run-finished-after-queued")


def test_a_run_asked_to_stop_shows_the_request_not_a_second_cancel_button(page, tenant, members):
    agent = AgentFactory(tenant=tenant, name="support")
    run = RunFactory(agent=agent, status=RunStatus.RUNNING, outcome="", lease_owner="worker-1")
    Run.objects.filter(pk=run.pk).update(lease_expires_at=run.created_at.replace(year=run.created_at.year + 1))
    log_in(page, "acme-operator")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.goto(f"/t/acme/runs/{run.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#run-cancel")
    page.wait_for_selector(".banner.warn:has-text('Cancel requested')")
    assert "Cancel requested" in page.inner_text("#flash")
    assert page.locator("#run-cancel").count() == 0  # already asked: nothing more to press
    Run.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED, outcome="cancelled", lease_owner="")
    page.wait_for_selector("#run-live[data-status=cancelled]", timeout=15_000)
    assert page.inner_text("#flash").strip() == ""
    assert page.locator(".banner.warn").count() == 0


def test_the_inbox_works_from_the_keyboard(page, tenant, members):
    agent = AgentFactory(tenant=tenant, name="support")
    first, second = _waiting_escalation(agent, members), _waiting_escalation(agent, members)
    log_in(page, "acme-operator")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.goto("/t/acme/escalations/")
    assert page.title() == "(2) Escalations · Acme · AgentOps"  # the number waiting, in the tab
    assert page.locator("form#bulk-reject").count() == 1
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    current = page.locator("#pending-escalations tr.is-current")
    assert current.count() == 1
    opened = current.get_attribute("data-escalation")
    page.keyboard.press("x")
    assert current.locator("input[type=checkbox]").is_checked()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/t/acme/escalations/{opened}/$"))
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "decision-comment"
    page.keyboard.type("Not this one.")
    page.keyboard.press("Enter")
    page.wait_for_selector("#decision-outcome:has-text('rejected')")
    assert Escalation.objects.get(pk=opened).comment == "Not this one."
    assert {str(first.pk), str(second.pk)} >= {opened}
