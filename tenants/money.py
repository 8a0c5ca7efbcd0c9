"""Money as people read it and as the API writes it: one place for each, so every page and every
endpoint agrees (issue 13: pages showed `4.0000000000`, the API `0E-10` and `8.106505600000000`).

Amounts stay exact ``Decimal`` everywhere; these only turn them into text. It lives on the lowest
floor (tenants) so every app, and the tenant audit log, can use it.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def money_str(value: Any) -> str | None:
    """The API's money: an exact, normalised decimal string. At least two decimals, more only when
    the amount has them; never an exponent. ``0E-10`` -> ``"0.00"``, ``8.106505600000000`` ->
    ``"8.1065056"``, ``100`` -> ``"100.00"``. ``None`` stays ``None``."""
    number = _decimal(value)
    if number is None:
        return None
    if number == 0:
        return "0.00"
    text = f"{number.normalize():f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def usd_display(value: Any) -> str:
    """The console's money: ``$1,234.56``; an amount below one cent (a single small call) with up
    to 6 decimals, ``$0.0075``, ``$0.000123``; nothing known is a dash."""
    number = _decimal(value)
    if number is None:
        return "—"
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number == 0 or number >= CENT:
        return f"{sign}${number.quantize(CENT):,f}"
    small = number.quantize(MICRO)
    if small == 0:
        return f"{sign}<$0.000001" if not sign else "-$0.000001"
    frac = f"{small:f}".partition(".")[2].rstrip("0")
    return f"{sign}$0.{frac.ljust(2, '0')}"
