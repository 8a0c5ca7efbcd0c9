"""``{% load money %}``: ``{{ amount|usd }}`` and ``{{ count|thousands }}`` — the one way the console
shows money and token counts (see tenants.money)."""

from __future__ import annotations

from typing import Any

from django import template

from tenants.money import usd_display

register = template.Library()


@register.filter
def usd(value: Any) -> str:
    """``$1,234.56``; below a cent up to 6 decimals (``$0.0075``); unknown ``—``."""
    return usd_display(value)


@register.filter
def thousands(value: Any) -> str:
    """``12,345``; unknown ``—``."""
    if value is None or value == "" or isinstance(value, bool):
        return "—"
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"
