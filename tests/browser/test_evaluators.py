"""Online evaluator flags in a real browser: the runs list's flag filter, the run's flags and scores, the agent's policy."""

from __future__ import annotations

import pytest

from agentops.harness.loop import drive_run
from runs.models import Run
from tests.browser.test_console import log_in
from tests.runtime.conftest import _scripted, agent, demo_data, make_run, tier_generous  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def _drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="browser-test")
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("viewport", [(1440, 900), (1024, 768)])
def test_flags_scores_and_policy_in_the_console(page, agent, members, screenshot, viewport):  # noqa: F811 - the runtime fixture
    agent.flag_policy = {"unsupported_claim": "review"}
    agent.save()
    _drive(make_run(agent, "support_refund"))
    flagged = _drive(make_run(agent, "support_refund"))
    _drive(make_run(agent, "injection"))
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    suffix = f"{viewport[0]}x{viewport[1]}"
    log_in(page, members["admin"].username)
    page.goto("/t/acme/runs/?flag=unsupported_claim")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 1 and f"#{flagged.pk}" in rows.first.inner_text()
    screenshot(page, f"evaluators-runs-flag-filter-{suffix}")
    page.goto("/t/acme/runs/")
    page.locator("#runs a.flag", has_text="injection").first.click()
    page.wait_for_url("**flag=injection")
    assert page.locator("#runs tbody tr").count() == 1
    page.goto(f"/t/acme/runs/{flagged.pk}/")
    final = page.locator(".msg-assistant").last
    assert "unsupported_claim" in final.inner_text() and "unsupported_claim 1.00" in final.inner_text()
    screenshot(page, f"evaluators-run-{suffix}")
    page.goto(f"/t/acme/agents/{agent.pk}/")
    card = page.locator("#flag-policy")
    assert card.locator("select[name=policy_unsupported_claim]").input_value() == "review"
    card.scroll_into_view_if_needed()
    screenshot(page, f"evaluators-agent-policy-{suffix}")
    page.goto("/t/acme/escalations/")
    assert "Review" in page.locator("body").inner_text()
    screenshot(page, f"evaluators-review-inbox-{suffix}")
