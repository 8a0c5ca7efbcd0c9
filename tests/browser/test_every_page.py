"""Every console page in Chromium as the tenant's admin, on the crawl's demo world (tests/crawl.py):
at 1024×768 and 1440×900 no page scrolls sideways, no Python value leaks into the text, no console
error, and each page is fully loaded (the load event) within a second. The load times are written
to var/page-load.json."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test.utils import override_settings

from budgets.bench import fill_ledger
from budgets.demo import ROWS_PER_TENANT
from budgets.services import counters_resync
from tenants.models import Role, Tenant
from tests import crawl
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import ensure_model_prices
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOAD_BUDGET_MS = 1000
SHOTS = SCREENSHOTS / "pages"
README_SHOTS = Path(__file__).resolve().parents[2] / "static" / "screenshots"
# axe-core (npm axe-core 4.10.2, MPL-2.0, vendored for the tests only; see tests/browser/vendor/).
AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.10.2.min.js"
REPORT = Path(__file__).resolve().parents[2] / "var" / "page-load.json"
# Fragments, downloads and streams are not pages.
NOT_PAGES = ("/live/", "/run/", "/log/", ".csv", ".jsonl", "/events", "/stream")  # /log/: the run log's "earlier turns" fragment
# What Python prints where a person should read words: None/True/False, dict and Decimal reprs,
# Decimal's exponent form, unrounded money, model __str__ fallbacks ("caps for tenant 1").
LEAKS = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\d+E-\d+|\b\d+\.\d{7,}\b|for tenant \d+|object at 0x|Decimal\(")


def console_pages(world: crawl.World) -> list[str]:
    """The tenant routes the admin may GET (the first object of each kind, and a second run and
    escalation, which look different), plus the staff pages."""
    urls: list[str] = []
    for route in crawl.all_routes():
        if route.route.startswith("t/<slug:slug>/"):
            want, _ = crawl.expected(route, Role.ADMIN, "GET")
        elif route.route.startswith("staff/"):
            want, _ = crawl.expected(route, crawl.STAFF, "GET")
        else:
            continue
        if want != {200}:
            continue
        picks = [0, 1] if set(route.converters) & {"run_id", "escalation_id"} else [0]
        for i in picks:
            kwargs = {k: crawl.SLUG if k == "slug" else world.objects[k][min(i, len(world.objects[k]) - 1)] for k in route.converters}
            url = route.build(**kwargs)
            if not any(part in url for part in NOT_PAGES) and url not in urls:
                urls.append(url)
    return urls


def visit(page: Any, url: str) -> tuple[Any, list[str]]:
    """Open ``url``; its response and the console errors and failed requests while it loaded."""
    errors: list[str] = []
    on_console = lambda msg: errors.append(msg.text) if msg.type == "error" else None  # noqa: E731
    # The previous page's htmx poll, cut off by this navigation, is not this page's failure.
    on_failed = lambda req: None if (req.resource_type in ("xhr", "fetch") and "ERR_ABORTED" in (req.failure or "")) else errors.append(f"request failed: {req.url} ({req.failure})")  # noqa: E731, E501
    page.on("console", on_console)
    page.on("requestfailed", on_failed)
    response = page.goto(url, wait_until="load")
    page.wait_for_timeout(50)  # deferred chart drawing
    page.remove_listener("console", on_console)
    page.remove_listener("requestfailed", on_failed)
    return response, errors


def axe_serious(page: Any) -> list[str]:
    """axe-core's violations of serious or critical impact on the open page."""
    page.evaluate(AXE.read_text())
    return list(page.evaluate("""async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => v.id + " (" + v.impact + "): " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))"""))


def _log_in(context: Any, username: str) -> Any:
    page = context.new_page()
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_every_console_page_fits_reads_as_text_and_loads_in_a_second(browser, transactional_db, live_server):
    ensure_model_prices()  # an earlier transactional test truncated the seeded prices
    with override_settings(**crawl.SCRIPTED):
        world = crawl.seed()
    # And the demo's 90 days of backfilled spend (budgets.demo), so the spend pages draw real volume.
    tenant = Tenant.objects.get(pk=world.tenant_id)
    fill_ledger(tenant=tenant, rows=ROWS_PER_TENANT[tenant.slug], days=90, runs=40, is_demo=True)
    counters_resync(tenant=tenant)
    from django.contrib.auth import get_user_model

    User = get_user_model()
    admin = User.objects.get(pk=world.users[Role.ADMIN])
    staff = User.objects.get(pk=world.users[crawl.STAFF])
    for user in (admin, staff):
        user.set_password(PASSWORD)
        user.save()
    urls = console_pages(world)
    assert len(urls) >= 20, urls
    # The README's Pages section shows these, as this test took them (static/screenshots/).
    readme_shots = {url: name for name, url in (
        ("home", "/t/acme/"), ("runs", "/t/acme/runs/"), ("run", f"/t/acme/runs/{world.objects['run_id'][0]}/"),
        ("escalations", "/t/acme/escalations/"), ("escalation", f"/t/acme/escalations/{world.objects['escalation_id'][0]}/"),
        ("spend", "/t/acme/spend/"), ("grants", "/t/acme/grants/"), ("audit", "/t/acme/audit/"), ("staff", "/staff/"),
    )}
    assert set(readme_shots) <= set(urls), set(readme_shots) - set(urls)
    README_SHOTS.mkdir(parents=True, exist_ok=True)

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    loads: dict[str, dict[str, float]] = {}
    for width, height in ((1024, 768), (1440, 900)):
        sessions = {}
        for who, user in (("admin", admin), ("staff", staff)):
            context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": height})
            context.set_default_timeout(20_000)
            sessions[who] = (context, _log_in(context, user.username))
        for url in urls:
            context, page = sessions["staff" if url.startswith("/staff/") else "admin"]
            response, errors = visit(page, url)
            where = f"{url} at {width}px"
            if response is None or response.status != 200:
                problems.append(f"{where}: HTTP {response and response.status}")
                continue
            load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            loads.setdefault(url, {})[str(width)] = round(load_ms, 1)
            if load_ms > LOAD_BUDGET_MS:
                # Two CPUs shared with other test runs: a slow load is measured up to twice more
                # (warm, as a returning visitor); every figure is kept in the report.
                tries = [load_ms]
                while len(tries) < 3 and min(tries) > LOAD_BUDGET_MS:
                    page.reload(wait_until="load")
                    tries.append(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
                loads[url][f"{width}-again"] = [round(t, 1) for t in tries[1:]]
                if min(tries) > LOAD_BUDGET_MS:
                    problems.append(f"{where}: loaded in {', '.join(f'{t:.0f}' for t in tries)} ms (load average {os.getloadavg()[0]:.1f})")
            scroll, client = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
            if scroll > client:
                wide = page.evaluate("""() => [...document.querySelectorAll('main *')]
                    .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                    .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
                problems.append(f"{where}: {scroll} px wide in {client} px: {wide}")
            shot = SHOTS / f"{width}-{re.sub(r'[^a-z0-9]+', '-', url).strip('-')}.png"
            page.screenshot(path=str(shot), full_page=True)
            # The committed README images change only when asked (AGENTOPS_README_SHOTS=1), so CI leaves the tree clean.
            if width == 1440 and url in readme_shots and os.environ.get("AGENTOPS_README_SHOTS") == "1":
                shutil.copyfile(shot, README_SHOTS / f"{readme_shots[url]}.png")
            if width == 1024:  # once per page: axe's rules do not depend on the width
                found = axe_serious(page)
                problems.extend(f"{where}: axe {v}" for v in found)
            text = page.inner_text("body")
            for leak in {m.group(0) for m in LEAKS.finditer(text)}:
                line = next(line for line in text.splitlines() if leak in line)
                problems.append(f"{where}: Python leaks into the page: {leak!r} in {line.strip()[:160]!r}")
            problems.extend(f"{where}: console: {e}" for e in errors)
        for context, _ in sessions.values():
            context.close()
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps({"load_average": os.getloadavg(), "load_event_ms": loads}, indent=1))
    assert problems == [], "\n".join(problems)
