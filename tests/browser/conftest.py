"""Headless Chromium (Debian's, at /usr/bin/chromium) driven by Playwright against pytest-django's
live_server. Playwright's own browser download is not used. A missing Chromium FAILS the tests:
install it with ``apt-get install -y chromium`` (``python3 dev.py test`` does so when it can)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: the event loop goes away with the browser, before other packages' tests run.
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (python3 dev.py test does this)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test thread; Django's ORM would refuse to run
    # there (SynchronousOnlyOperation) although nothing is actually async. Only while the browser
    # lives: elsewhere (e.g. `check --deploy` in a subprocess) the variable must not leak.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as pw:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Any, transactional_db: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 820})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    violations = watch_csp(pg)
    try:
        yield pg
    finally:
        context.close()
    assert violations == [], f"the Content-Security-Policy blocked something: {violations}"


def watch_csp(pg: Any) -> list[str]:
    """Every Content-Security-Policy violation the page reports (Chromium logs each as a console error)."""
    violations: list[str] = []
    pg.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    return violations


@pytest.fixture
def screenshot() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(pg: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        pg.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000
        return path

    return take
