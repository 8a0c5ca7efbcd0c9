"""The prompts pages in a real browser: live checks while typing (htmx), the diff, the gate's refusal."""

from __future__ import annotations

import re

import pytest

from agentops.prompts import demo
from runs import demo as runs_demo
from tenants.models import Role
from tests.browser.test_console import log_in

pytestmark = pytest.mark.browser


def test_prompt_pages_live_checks_and_the_gate(page, tenant, members, screenshot):  # type: ignore[no-untyped-def]
    from tests.conftest import ensure_model_prices

    ensure_model_prices()
    demo.setup_tenant(tenant, members[Role.ADMIN], runs_demo.setup_tenant(tenant, members[Role.ADMIN]))
    log_in(page, members[Role.PROMPT_EDITOR].username)
    page.wait_for_url(re.compile(r"/t/acme/$"))
    for width, height in ((1440, 900), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/t/acme/prompts/")
        assert page.locator("#prompts").get_by_text("support-agent").count() == 1
        screenshot(page, f"prompts-list-{width}")
        page.goto("/t/acme/prompts/support-agent/")
        screenshot(page, f"prompt-detail-{width}")
        page.goto("/t/acme/prompts/support-agent/diff/?a=2&b=4")
        assert page.locator("[data-field=system][data-changed='1']").count() == 1
        screenshot(page, f"prompt-diff-{width}")
        page.goto("/t/acme/prompts/support-agent/labels/production/")
        screenshot(page, f"prompt-label-{width}")
    page.goto("/t/acme/prompts/support-agent/v/2/new/")
    page.fill("textarea[name=first_message]", "Hello {{customer}}")
    page.locator("#checks-result").get_by_text("Undeclared variables: customer").wait_for()
    screenshot(page, "prompt-new-version-checks")
    page.goto("/t/acme/prompts/support-agent/labels/production/")
    page.select_option("select[name=version]", "4")
    page.click("#move-form button[type=submit]")
    page.locator("#refused").wait_for()
    assert "no_eval_results" in page.locator("#refused").inner_text()
    screenshot(page, "prompt-gate-refused")


def test_the_try_it_panel_and_the_version_page(page, tenant, members, screenshot):  # type: ignore[no-untyped-def]
    from tests.conftest import ensure_model_prices

    ensure_model_prices()
    demo.setup_tenant(tenant, members[Role.ADMIN], runs_demo.setup_tenant(tenant, members[Role.ADMIN]))
    log_in(page, members[Role.PROMPT_EDITOR].username)
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto("/t/acme/prompts/support-agent/v/4/")
    screenshot(page, "prompt-version-1440")
    page.goto("/t/acme/prompts/support-agent/v/4/try/")
    page.fill("textarea[name=input]", "I was charged twice for my order on ACC-1001.")
    page.click("#try-form button[type=submit]")
    page.locator(".try-pair").wait_for()
    assert page.locator(".try-pair section").count() == 2  # v4 beside production v2
    screenshot(page, "prompt-try-1440")
