"""The console in a real browser: log in through the form, land on the tenant home, walk the admin pages."""

from __future__ import annotations

import re

import pytest

from tenants import services
from tenants.models import Membership, Role
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def log_in(page, username: str) -> None:  # type: ignore[no-untyped-def]
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_an_admin_logs_in_and_lands_on_the_tenant_home(page, tenant, members, screenshot):
    page.goto("/t/acme/")  # anonymous: sent to the login form
    assert "/login/" in page.url
    screenshot(page, "login")
    page.fill("input[name=username]", "acme-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    assert page.locator("h1").inner_text() == "Acme"
    assert page.locator(".panel").count() >= 4
    assert page.locator("nav.sidenav a", has_text="Members").count() == 1
    screenshot(page, "home")


def test_a_wrong_password_is_refused(page, tenant, members):
    page.goto("/login/")
    page.fill("input[name=username]", "acme-admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert "did not match" in page.locator(".banner").inner_text()


def test_the_admin_pages_work_in_a_browser(page, tenant, other_tenant, members, screenshot):
    admin = members[Role.ADMIN]
    Membership.objects.create(tenant=other_tenant, user=admin, role=Role.VIEWER)
    services.api_key_create(tenant=tenant, actor=admin, name="billing-service", scopes=["runs", "spend"])
    log_in(page, "acme-admin")
    page.wait_for_selector("h1:has-text('Your tenants')")  # two tenants: the list
    screenshot(page, "tenant-list")
    page.click("table >> text=Acme")
    page.wait_for_url(re.compile(r"/t/acme/$"))

    page.click("nav.sidenav >> text=Members")
    page.fill("input[name=email]", "newcomer@example.test")
    page.select_option("form#invite select[name=role]", "operator")
    page.click("text=Send invitation")
    assert "Invitation sent to newcomer@example.test" in page.locator(".messages").inner_text()
    assert page.locator("#invitations tr[data-email='newcomer@example.test']").count() == 1
    row = page.locator("tr[data-username=acme-viewer]")
    row.locator("select[name=role]").select_option("finance")
    row.locator("button", has_text="Change").click()
    assert "acme-viewer is now finance" in page.locator(".messages").inner_text()
    screenshot(page, "members")

    page.click("nav.sidenav >> text=API keys")
    page.fill("input[name=name]", "support-bot")
    page.check("input[value=runs]")
    page.check("input[value=escalations]")
    page.click("text=Create key")
    secret = page.locator("#new-key").inner_text()
    assert secret.startswith("aok_")
    screenshot(page, "api-keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#keys tr", has_text="billing-service").locator("button", has_text="Revoke").click()
    assert "revoked" in page.locator(".messages").inner_text()
    assert secret not in page.content()  # shown once

    page.click("nav.sidenav >> text=Audit log")
    actions = page.locator("#audit tbody code").all_inner_texts()
    for action in ("apikey.revoke", "apikey.create", "member.role", "invitation.create"):
        assert action in actions
    screenshot(page, "audit")

    # The tenant switcher takes the admin to the other tenant, where they are a viewer.
    page.select_option("form.switcher select", "globex")
    page.wait_for_url(re.compile(r"/t/globex/$"))
    assert page.locator("nav.sidenav a", has_text="Members").count() == 0
    screenshot(page, "switched-viewer-home")

    page.click("text=Log out")
    page.wait_for_url(re.compile(r"/login/$"))


def test_an_invited_person_joins_from_the_e_mailed_link(page, tenant, members, mailoutbox, screenshot):
    log_in(page, "acme-admin")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    page.goto("/t/acme/members/")
    page.fill("input[name=email]", "ada@example.test")
    page.select_option("form#invite select[name=role]", "finance")
    page.click("text=Send invitation")
    assert "Invitation sent to ada@example.test" in page.locator(".messages").inner_text()
    page.click("text=Log out")
    page.wait_for_url(re.compile(r"/login/$"))

    link = re.search(r"http://\S+/invite/[A-Za-z0-9_-]+/", mailoutbox[-1].body).group(0)
    page.goto(link)
    page.wait_for_url(re.compile(r"/invite/accept/$"))  # the token is no longer in the address bar
    assert "Join Acme" in page.locator("h1").inner_text()
    screenshot(page, "invitation-accept")
    page.fill("input[name=password1]", "a-long-new-secret")
    page.fill("input[name=password2]", "a-long-new-secret")
    page.click("text=Create account and join")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    assert "Welcome to Acme" in page.locator(".messages").inner_text()
    assert Membership.objects.get(tenant=tenant, user__username="ada@example.test").role == Role.FINANCE
    assert "ada@example.test" in page.locator(".who").inner_text()  # signed in as the new account


def test_plotly_and_htmx_work_under_the_content_security_policy(page, tenant, members, screenshot):
    from budgets.services import reservation_open, reservation_settle
    from runs.models import RunStatus
    from tests.budgets._workers import FULL_USAGE
    from tests.runs_console.factories import AgentFactory, RunFactory

    agent = AgentFactory(tenant=tenant, name="support")
    run = RunFactory(agent=agent, status=RunStatus.RUNNING, submitted_by=members[Role.OPERATOR])
    reservation_settle(reservation=reservation_open(run=run, model="claude-sonnet-4-5", max_tokens=100, input_tokens_bound=1000),
                       usage=FULL_USAGE, model="claude-sonnet-4-5")
    log_in(page, "acme-admin")
    page.wait_for_url(re.compile(r"/t/acme/$"))
    # Plotly draws every figure from its JSON data block, with script only from static files.
    page.goto("/t/acme/spend/")
    page.wait_for_selector("#fig-per-day + script, [data-figure] .main-svg")
    assert page.locator("[data-figure] .main-svg").count() >= 3
    screenshot(page, "spend-under-csp")
    # htmx polls the live run and swaps the fragment in when the run ends, without a reload.
    page.goto(f"/t/acme/runs/{run.pk}/")
    page.evaluate("window.__no_reload = true")
    type(run).objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    page.wait_for_selector("text=succeeded", timeout=15_000)
    assert page.evaluate("window.__no_reload") is True
    # The confirm() that replaced the inline onsubmit still guards the cancel button.
    run2 = RunFactory(agent=agent, status=RunStatus.RUNNING)
    page.goto(f"/t/acme/runs/{run2.pk}/")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("button", has_text="Cancel").click()
    assert asked and "Cancel run" in asked[0]
    run2.refresh_from_db()
    assert not run2.cancel_requested  # dismissed: nothing was posted
