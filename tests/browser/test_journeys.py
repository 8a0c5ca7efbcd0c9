"""The console's main journeys in Chromium, checking what the page shows after each step: a cap
change, an API key created (its secret shown once) and revoked (the API then answers 401), the
agent kill switch, the spend CSV export and a run started from the console and watched to its end.

Runs are driven in the test's process by the real agent loop against the scripted Messages API
(``drive_run``, as the evaluator browser tests do); the page follows by its own polling.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.db import connection

from agentops.harness.loop import drive_run
from budgets.models import SpendEntry
from runs.models import Run
from tenants.models import Role
from tests.browser.test_console import log_in
from tests.runtime.conftest import _scripted, agent, demo_data, make_run, tier_generous  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def _as_admin(page, members) -> None:  # type: ignore[no-untyped-def]
    log_in(page, members[Role.ADMIN].username)
    page.wait_for_url(re.compile(r"/t/acme/$"))


def test_an_admin_changes_the_tenant_cap_and_both_pages_show_it(page, agent, members, screenshot):  # noqa: F811
    _as_admin(page, members)
    page.goto("/t/acme/spend/caps/")
    in_force = page.locator("tr", has_text="Whole tenant per month").locator("td").nth(2)
    assert in_force.inner_text() == "$1,000.00"  # the tier's limit (tier_generous)
    page.fill("input[name=tenant_month_cost_cap]", "734.50")
    page.click("text=Save tenant caps")
    page.wait_for_load_state()
    assert page.locator("tr", has_text="Whole tenant per month").locator("td").nth(2).inner_text() == "$734.50"
    assert page.input_value("input[name=tenant_month_cost_cap]") == "734.50"
    screenshot(page, "journey-caps")
    page.goto("/t/acme/spend/")
    assert "of $734.50" in page.inner_text("main")


def test_an_api_key_is_shown_once_and_refused_once_revoked(page, agent, members, live_server, screenshot):  # noqa: F811
    _as_admin(page, members)
    page.goto("/t/acme/api-keys/")
    page.fill("input[name=name]", "journey-bot")
    page.check("input[value=runs]")
    page.click("text=Create key")
    secret = page.locator("#new-key").inner_text().strip()
    assert secret.startswith("aok_")
    row = page.locator("#keys tr", has_text="journey-bot")
    assert row.count() == 1 and secret not in row.inner_text()

    def api() -> int:
        request = urllib.request.Request(f"{live_server.url}/api/v1/runs", headers={"Authorization": f"Bearer {secret}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    assert api() == 200
    page.goto("/t/acme/api-keys/")
    assert secret not in page.content()  # shown once: gone on the next view
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#keys tr", has_text="journey-bot").locator("button", has_text="Revoke").click()
    page.wait_for_load_state()
    assert "revoked" in page.locator(".messages").inner_text()
    assert "revoked" in page.locator("#keys tr", has_text="journey-bot").inner_text().lower()
    screenshot(page, "journey-api-key-revoked")
    assert api() == 401


def test_the_agent_kill_switch_refuses_a_run_start_in_the_console(page, agent, members, screenshot):  # noqa: F811
    _as_admin(page, members)
    page.goto(f"/t/acme/agents/{agent.pk}/")
    assert page.locator(".run-actions .badge", has_text="kill switch on").count() == 0
    page.click("text=Stop runs (kill switch)")
    page.wait_for_selector(".run-actions .badge:has-text('kill switch on')")
    assert page.locator("button", has_text="Enable runs").count() == 1
    page.goto("/t/acme/agents/")
    assert page.locator("tr[data-agent=support] .badge").inner_text() == "on"

    before = Run.objects.filter(agent=agent).count()
    page.goto(f"/t/acme/runs/new/?agent={agent.pk}")
    page.fill("textarea[name=input]", "Anyone there?")
    with page.expect_response(re.compile(r"/runs/new/")) as answer:
        page.click("text=Start run")
    assert answer.value.status == 409
    assert "New runs are disabled for this agent." in page.inner_text("main")
    assert page.input_value("textarea[name=input]") == "Anyone there?"  # the form stays filled
    assert Run.objects.filter(agent=agent).count() == before
    screenshot(page, "journey-kill-switch-refused")

    page.goto(f"/t/acme/agents/{agent.pk}/")
    page.click("text=Enable runs")
    page.wait_for_selector("text=Stop runs (kill switch)")
    assert page.locator(".run-actions .badge", has_text="kill switch on").count() == 0


def test_the_spend_export_downloads_the_ledger_with_its_exact_decimals(page, agent, members):  # noqa: F811
    for scenario in ("support_refund", "cache_usage"):
        drive_run(make_run(agent, scenario).pk, worker_id="browser-test")
    entries = list(SpendEntry.objects.filter(tenant=agent.tenant).order_by("at"))
    assert len(entries) >= 2
    _as_admin(page, members)
    page.goto("/t/acme/spend/")
    with page.expect_download() as download:
        page.click("text=Export ledger (CSV)")
    assert download.value.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[0][:3] == ["at", "day", "tenant"] and "cost_usd" in rows[0]
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == len(entries)
    assert sorted(r["cost_usd"] for r in body) == sorted(f"{e.cost:f}" for e in entries)
    assert sum(Decimal(r["cost_usd"]) for r in body) == sum(e.cost for e in entries)
    assert {r["run_id"] for r in body} == {str(e.run_id) for e in entries}


def test_a_run_started_from_the_console_goes_live_and_ends_with_its_log(page, agent, members, screenshot):  # noqa: F811
    _as_admin(page, members)
    page.goto(f"/t/acme/runs/new/?agent={agent.pk}")
    page.fill("textarea[name=input]", "I was charged twice for my order on ACC-1001.")
    page.select_option("select[name=scenario]", "support_refund")
    page.click("text=Start run")
    page.wait_for_url(re.compile(r"/t/acme/runs/\d+/$"))
    run = Run.objects.get(agent=agent, input__startswith="I was charged twice")
    assert run.metadata.get("scenario") == "support_refund"
    assert page.get_attribute("#run-live", "data-status") == "queued"
    page.evaluate("window.__no_reload = true")

    # A worker picks it up (a thread: the page keeps polling while the loop runs).
    done: list[str] = []
    worker = threading.Thread(target=lambda: (done.append(drive_run(run.pk, worker_id="browser-worker")), connection.close()))
    worker.start()
    worker.join(timeout=60)
    assert done and not worker.is_alive()
    page.wait_for_selector("#run-live[data-status=succeeded]", timeout=20_000)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.iterations >= 2
    log = page.locator(".msg-assistant")
    assert log.count() >= 1 and log.last.inner_text().strip()
    assert "refund" in page.inner_text("main").lower()
    assert page.locator("#run-cancel").count() == 0
    assert page.evaluate("window.__no_reload") is True  # it came live, not by a reload
    screenshot(page, "journey-run-watched")
