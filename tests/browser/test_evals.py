"""The evals pages in Chromium under the CSP: the pass-rate chart draws, verdicts and the compare
page render at desktop and laptop widths (screenshots in var/screenshots/evals-*)."""

from __future__ import annotations

import re

import pytest
from django.test.utils import override_settings

from agentops.evals import demo as evals_demo
from agentops.evals.models import EvalRun
from runs import demo as runs_demo
from tenants.models import Role
from tests.browser.test_console import log_in

pytestmark = pytest.mark.browser


@override_settings(ANTHROPIC_API_KEY="", AGENTOPS_SCENARIO="")
def test_the_evals_pages_draw_under_the_csp(page, tenant, members, screenshot):  # type: ignore[no-untyped-def]
    from tests.conftest import ensure_model_prices

    ensure_model_prices()
    tier = tenant.tier
    tier.max_concurrent_runs = 100
    tier.save()
    agents = runs_demo.setup_tenant(tenant, members[Role.ADMIN])
    suite = evals_demo.ensure_suite(tenant, members[Role.PROMPT_EDITOR], agents["support"])
    evals_demo.history(suite, members[Role.PROMPT_EDITOR], evals_demo.drive_in_process)
    runs = list(EvalRun.objects.filter(suite=suite).order_by("prompt_version__number"))
    assert [r.prompt_version.number for r in runs] == [1, 2, 3] and runs[2].regression
    log_in(page, "acme-viewer")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    for width, height in ((1440, 900), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/t/acme/evals/")
        page.wait_for_selector("[data-figure] .main-svg")
        screenshot(page, f"evals-overview-{width}")
        page.goto(f"/t/acme/evals/suites/{suite.pk}/")
        page.wait_for_selector("#cases")
        assert page.locator("#cases tbody tr").count() == 22
        screenshot(page, f"evals-suite-{width}")
        page.goto(f"/t/acme/evals/runs/{runs[2].pk}/")
        assert page.locator("#results .badge.failed").count() > 0
        screenshot(page, f"evals-run-{width}")
        page.goto(f"/t/acme/evals/compare/?a={runs[1].pk}&b={runs[2].pk}")
        assert page.locator("#deltas .badge.failed").count() > 0
        screenshot(page, f"evals-compare-{width}")
