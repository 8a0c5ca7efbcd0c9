"""Money is shown one way in the console and written one way by the API (issue 13)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from tenants.money import money_str, usd_display


@pytest.mark.parametrize(("value", "shown"), [
    (Decimal("1234.56"), "$1,234.56"),
    (Decimal("1234.5"), "$1,234.50"),
    (Decimal("4.0000000000"), "$4.00"),
    (Decimal("8.106505600000000"), "$8.11"),
    (Decimal("0.012345"), "$0.01"),          # a cent or more: cents
    (Decimal("0.01"), "$0.01"),
    (Decimal("0.0075"), "$0.0075"),          # below a cent: up to 6 decimals
    (Decimal("0.0033000000"), "$0.0033"),
    (Decimal("0.0001234567"), "$0.000123"),
    (Decimal("0.005"), "$0.005"),
    (Decimal("0.0000001"), "<$0.000001"),
    (Decimal("0E-10"), "$0.00"),
    (Decimal("0"), "$0.00"),
    (Decimal("-2.5"), "-$2.50"),
    ("100.00", "$100.00"),
    (2, "$2.00"),
    (None, "—"), ("", "—"), ("NaN", "—"), ("Infinity", "—"), ("x", "—"), (True, "—"),
])
def test_usd_display(value, shown):
    assert usd_display(value) == shown


@pytest.mark.parametrize(("value", "written"), [
    (Decimal("0E-10"), "0.00"),
    (Decimal("8.106505600000000"), "8.1065056"),
    (Decimal("0.0024058001"), "0.0024058001"),
    (Decimal("100"), "100.00"),
    (Decimal("100.0000000000"), "100.00"),
    (Decimal("1.5"), "1.50"),
    (Decimal("1E+3"), "1000.00"),
    (Decimal("0.0075000000"), "0.0075"),
    (None, None), ("NaN", None),
])
def test_money_str(value, written):
    assert money_str(value) == written


def test_the_template_filters_show_money_and_token_counts():
    html = Template("{% load money %}{{ a|usd }} {{ b|usd }} {{ c|usd }} {{ n|thousands }} {{ m|thousands }}").render(
        Context({"a": Decimal("1234.5600000000"), "b": Decimal("0.0075000000"), "c": None, "n": 1234567, "m": None}))
    assert html == "$1,234.56 $0.0075 — 1,234,567 —"


def test_every_template_that_shows_money_uses_the_filter():
    """No `${{ x|floatformat }}` or bare cost left in a template: they all go through |usd."""
    import re
    from pathlib import Path

    from django.conf import settings

    offenders = []
    for path in Path(settings.BASE_DIR, "templates").rglob("*.html"):
        text = path.read_text()
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\$\{\{[^}]*\}\}", text)]
        # A form's input (``{{ form.cost_min }}``) is a widget, not an amount shown.
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\{\{(?!\s*form\.)[^}|]*(?:cost|total|spent|usd)[^}|]*\}\}", text)]
        if "|usd" in text or "|thousands" in text:
            assert "{% load" in text and "money" in text, path.name
    assert offenders == []


@pytest.mark.django_db
def test_the_api_writes_a_runs_cost_normalised(tenant):
    from runs.selectors import run_as_dict
    from tests.runs_console.factories import AgentFactory, RunFactory

    run = RunFactory(agent=AgentFactory(tenant=tenant), status="succeeded")
    run.cost = Decimal("0E-10")
    assert run_as_dict(run)["cost_usd"] == "0.00"
    run.cost = Decimal("8.1065056000")
    assert run_as_dict(run)["cost_usd"] == "8.1065056"


@pytest.mark.django_db
def test_the_audit_log_shows_money_and_flags_as_people_read_them(tenant):
    from tenants.models import AuditEvent
    from tenants.selectors import audit_changes

    event = AuditEvent(tenant=tenant, action="caps.update",
                       before={"task_cost_cap": "4.0000000000", "gate_irreversible_tools": True, "max_concurrent_runs": 5},
                       after={"task_cost_cap": "2.5000000000", "gate_irreversible_tools": False, "max_concurrent_runs": 3})
    rows = {r["field"]: (r["before"], r["after"]) for r in audit_changes(event)}
    assert rows == {"task_cost_cap": ("$4.00", "$2.50"), "gate_irreversible_tools": ("yes", "no"),
                    "max_concurrent_runs": ("5", "3")}


@pytest.mark.django_db
def test_the_audit_log_shows_counts_dicts_times_and_nothing_as_people_read_them(tenant, settings):
    from django.utils import timezone

    from tenants.models import AuditEvent
    from tenants.selectors import audit_changes

    event = AuditEvent(tenant=tenant, action="agent.update",
                       before={"iteration_cap": 25, "allow": {}, "approval_over": {"amount": "100.00"}},
                       after={"iteration_cap": 30, "allow": {"domains": ["a.example", "b.example"]}, "approval_over": {"amount": "250"},
                              "expires_at": "2026-12-13T01:30:54.883269+00:00"})
    with timezone.override("Europe/Berlin"):
        rows = {r["label"]: (r["before"], r["after"]) for r in audit_changes(event)}
    assert rows == {
        "iteration cap": ("25", "30"),  # a count, not money
        "allow": ("—", "domains: a.example, b.example"),
        "approval over": ("amount: $100.00", "amount: $250.00"),
        "expires at": ("—", "2026-12-13 02:30 CET"),
    }
