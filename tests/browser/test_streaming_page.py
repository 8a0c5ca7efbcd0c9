"""The run page types the model's answer as it streams (htmx polls the live deltas)."""

from __future__ import annotations

import pytest

from agentops.harness import deltas
from runs.models import Agent, Run, RunStatus
from tenants.models import Role
from tests.browser.test_console import log_in

pytestmark = pytest.mark.browser


def test_the_run_page_types_the_streamed_answer(page, tenant, members, screenshot):
    agent = Agent.objects.create(tenant=tenant, name="support", system_prompt="Be brief.")
    run = Run.objects.create(
        tenant=tenant, agent=agent, input="Why was I charged twice?", status=RunStatus.RUNNING
    )
    relay = deltas.DeltaRelay(run.pk, 1)
    relay({"kind": "start", "model": "claude-sonnet-4-6"})
    relay({"kind": "text", "index": 0, "text": "Thanks for waiting. I looked at your account: "})
    log_in(page, members[Role.OPERATOR].username)
    page.wait_for_url("**/t/acme/**")
    for width, height in ((1440, 900), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"/t/acme/runs/{run.pk}/")
        card = page.locator("#streaming-turn")
        assert "I looked at your account" in card.inner_text()
        screenshot(page, f"run-streaming-{width}")
    # More text arrives while the page is open: it appears without a reload.
    relay({"kind": "text", "index": 0, "text": "the March invoice was charged twice."})
    relay({"kind": "stop", "index": 0})  # the block is complete: the word held back goes out
    page.locator("#streaming-turn", has_text="charged twice").wait_for(timeout=5000)
