"""Every console page in Chromium as every other role of the demo tenant (operator, finance,
prompt editor, viewer; the admin's full crawl is test_every_page.py), on the crawl's demo world.

What is checked, and why this much: the admin's crawl already takes every page at both sizes with
axe and the load budget. Here each role opens every tenant page at 1024×768 only (the narrower
size is where layouts break; the role changes what a page holds, not its grid):

- a page the role may open answers 200 with no sideways scroll, no Python value in the text, no
  console error and no failed request;
- a page the role may not open answers 403 (never 5xx) and renders the console's 403 page (the
  layout with its sidebar and the "Your role cannot open this" card) with no console error;
- axe (serious/critical = 0) runs only where the content differs by role: the role's home page,
  its first 403 page, and each page the role may read but not change (its forms are left out, so
  the page is not the admin's page with fewer buttons). Everything else is the admin's markup
  the admin crawl already ran axe over.

Load times are written to var/page-load-roles.json (the one-second budget is the admin crawl's,
measured on the same pages with the demo's spend volume).
"""

from __future__ import annotations

import json
import os
import re

import pytest
from django.contrib.auth import get_user_model
from django.test.utils import override_settings

from tenants.models import Role
from tests import crawl
from tests.browser.test_every_page import LEAKS, NOT_PAGES, REPORT, SHOTS, _log_in, axe_serious, visit
from tests.conftest import ensure_model_prices
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROLES = [Role.OPERATOR, Role.FINANCE, Role.PROMPT_EDITOR, Role.VIEWER]
ROLE_REPORT = REPORT.with_name("page-load-roles.json")
# Chromium reports a non-2xx main document as a console error; for a 403 page that is the point.
DOCUMENT_STATUS = re.compile(r"Failed to load resource: the server responded with a status of 403")


def role_pages(world: crawl.World, role: str) -> list[tuple[str, int, bool]]:
    """(url, expected status, axe?) for every tenant page, as ``role``: the first object of each kind."""
    pages: list[tuple[str, int, bool]] = []
    for route in crawl.all_routes():
        if not route.route.startswith("t/<slug:slug>/"):
            continue
        want, _ = crawl.expected(route, role, "GET")
        if want not in ({200}, {403}) or crawl.expected(route, Role.ADMIN, "GET")[0] != {200}:  # pages, not POST-only actions
            continue
        kwargs = {k: crawl.SLUG if k == "slug" else world.objects[k][0] for k in route.converters}
        url = route.build(**kwargs)
        if any(part in url for part in NOT_PAGES) or any(url == u for u, _, _ in pages):
            continue
        access = route.callback.tenant_access
        read_only = want == {200} and role not in access.write and bool(access.write & access.read)
        pages.append((url, next(iter(want)), read_only or route.route == "t/<slug:slug>/"))
    return pages


def test_every_role_gets_its_pages_clean_and_a_clean_403_for_the_rest(browser, transactional_db, live_server):
    ensure_model_prices()  # an earlier transactional test truncated the seeded prices
    with override_settings(**crawl.SCRIPTED):
        world = crawl.seed()
    User = get_user_model()
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    loads: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for role in ROLES:
        user = User.objects.get(pk=world.users[role])
        user.set_password(PASSWORD)
        user.save()
        pages = role_pages(world, role)
        counts[role] = {"200": sum(s == 200 for _, s, _ in pages), "403": sum(s == 403 for _, s, _ in pages),
                        "axe": sum(a for _, _, a in pages)}
        assert counts[role]["200"] >= 8, (role, pages)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1024, "height": 768})
        context.set_default_timeout(20_000)
        page = _log_in(context, user.username)
        forbidden_axed = False
        for url, status, axe in pages:
            response, errors = visit(page, url)
            where = f"{url} as {role}"
            got = response.status if response else None
            if got != status:
                problems.append(f"{where}: HTTP {got}, expected {status}")
                continue
            loads.setdefault(role, {})[url] = round(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"), 1)
            if status == 403:
                errors = [e for e in errors if not DOCUMENT_STATUS.search(e)]
                card = page.locator(".error-page h1")
                if card.count() != 1 or card.inner_text() != "Your role cannot open this":
                    problems.append(f"{where}: not the console's 403 page")
                if page.locator("nav.sidenav").count() != 1:
                    problems.append(f"{where}: the 403 page has no sidebar")
                if f"You are {Role(role).label.lower()} in Acme" not in page.inner_text("main"):
                    problems.append(f"{where}: the 403 page does not say the role")
                axe, forbidden_axed = axe or not forbidden_axed, True
            scroll, client = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
            if scroll > client:
                problems.append(f"{where}: {scroll} px wide in {client} px")
            if axe:
                found = axe_serious(page)
                problems.extend(f"{where}: axe {v}" for v in found)
                page.screenshot(path=str(SHOTS / f"1024-{role}-{re.sub(r'[^a-z0-9]+', '-', url).strip('-')}.png"), full_page=True)
            text = page.inner_text("body")
            for leak in {m.group(0) for m in LEAKS.finditer(text)}:
                line = next(line for line in text.splitlines() if leak in line)
                problems.append(f"{where}: Python leaks into the page: {leak!r} in {line.strip()[:160]!r}")
            problems.extend(f"{where}: console: {e}" for e in errors)
        context.close()
    ROLE_REPORT.parent.mkdir(parents=True, exist_ok=True)
    ROLE_REPORT.write_text(json.dumps({"load_average": os.getloadavg(), "pages": counts, "load_event_ms": loads}, indent=1))
    # Every role is refused somewhere (the admin pages), so the 403 page was seen by each.
    assert all(c["403"] > 0 for c in counts.values()), counts
    assert problems == [], "\n".join(problems)

