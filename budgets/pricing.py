"""Model prices: lookup by exact id, then by family; the exact cost of a response's ``usage``.

Prices are a table per model (seeded from Anthropic's published tables, editable by staff in
Django admin), never a multiplier formula: several published rows do not follow the 1.25x / 2x /
0.1x ratios (Haiku 3 is rounded, Fable 5.1's cache read is 0.025x).
"""

from __future__ import annotations

import decimal
import re
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from budgets.models import ModelPrice

MTOK = Decimal(1_000_000)
# Dated snapshots, "-latest" aliases and the "-0" minor alias (claude-opus-4-0) share their
# family's price. Nothing else falls back: an unknown new minor (claude-opus-4-9) must not be
# priced as claude-opus-4 — it is refused until staff enter its price.
_FAMILY_SUFFIX = re.compile(r"-(\d{8}|latest|0)$")
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")
_EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])


class UnknownModelPrice(Exception):
    """No price row covers this model at this time; the call is refused, never priced at zero."""
    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"No price is configured for model {model!r}; platform staff must add it before it can be used.")


@dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    cache_read: int = 0

    @property
    def prompt_total(self) -> int:
        """All prompt tokens: ``usage.input_tokens`` excludes cache writes and reads."""
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


def model_family(model: str) -> str:
    return _FAMILY_SUFFIX.sub("", model)


def model_matches(model: str, entry: str) -> bool:
    """Whether ``model`` is ``entry`` or a dated/alias id of the family ``entry`` (allow-lists)."""
    return model == entry or model_family(model) == entry


# The price table is small and read on every model call: each process keeps it for
# CACHE_SECONDS (staff edits reach every worker within that), and drops it at once when a
# price is saved in this process.
CACHE_SECONDS = 30.0
_cache: dict[str, list[ModelPrice]] | None = None
_cache_at = 0.0


def prices_cache_clear(**_: Any) -> None:
    """Drop the cached table now and again after commit (a reload in between could read the
    row before its transaction commits or rolls back)."""
    global _cache
    _cache = None

    def again() -> None:
        global _cache
        _cache = None

    if connection.in_atomic_block:
        transaction.on_commit(again)


def _table() -> dict[str, list[ModelPrice]]:
    global _cache, _cache_at
    if _cache is None or time.monotonic() - _cache_at > CACHE_SECONDS:
        table: dict[str, list[ModelPrice]] = {}
        for row in ModelPrice.objects.order_by("-effective_from"):
            table.setdefault(row.model, []).append(row)
        _cache, _cache_at = table, time.monotonic()
    return _cache


def price_for(model: str, at: datetime | None = None) -> ModelPrice:
    """The price row for ``model`` in force at ``at``: exact id first, then its family."""
    if not isinstance(model, str) or not _MODEL_ID.match(model):
        raise UnknownModelPrice(str(model)[:100])
    at = at or timezone.now()
    table = _table()
    for wanted in (model, model_family(model)):
        for row in table.get(wanted, ()):
            if row.effective_from <= at and (row.effective_to is None or at < row.effective_to):
                return row
    raise UnknownModelPrice(model)


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 10**12:
        raise ValueError(f"usage.{name} must be a non-negative integer, got {value!r}")
    return value


def tokens_from_usage(usage: dict[str, Any]) -> Tokens:
    """Split an Anthropic ``usage`` dict into the five priced token kinds.

    ``cache_creation`` splits the writes by TTL; without it (older responses, Bedrock) every write
    is a 5-minute write, the API's default TTL. Any part of ``cache_creation_input_tokens`` the
    split does not explain is priced as 5-minute too.
    """
    if not isinstance(usage, dict):
        raise ValueError("usage must be a dict")
    total_writes = _count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    split = usage.get("cache_creation") or {}
    if not isinstance(split, dict):
        raise ValueError("usage.cache_creation must be an object")
    w5 = _count(split.get("ephemeral_5m_input_tokens"), "cache_creation.ephemeral_5m_input_tokens")
    w1h = _count(split.get("ephemeral_1h_input_tokens"), "cache_creation.ephemeral_1h_input_tokens")
    w5 += max(0, total_writes - w5 - w1h)
    return Tokens(
        input=_count(usage.get("input_tokens"), "input_tokens"),
        output=_count(usage.get("output_tokens"), "output_tokens"),
        cache_write_5m=w5,
        cache_write_1h=w1h,
        cache_read=_count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens"),
    )


def cost_of_tokens(price: ModelPrice, tokens: Tokens) -> Decimal:
    """Exact cost; the trapping context makes any rounding an error instead of a silent loss."""
    c = _EXACT
    total = c.add(
        c.add(
            c.add(c.multiply(tokens.input, price.input), c.multiply(tokens.output, price.output)),
            c.add(c.multiply(tokens.cache_write_5m, price.cache_write_5m), c.multiply(tokens.cache_write_1h, price.cache_write_1h)),
        ),
        c.multiply(tokens.cache_read, price.cache_read),
    )
    return c.divide(total, MTOK)


def worst_case_cost(price: ModelPrice, *, input_tokens_bound: int, max_tokens: int) -> Decimal:
    """Upper bound of a call's cost: every input token at the dearest input rate, full max_tokens out."""
    c = _EXACT
    return c.divide(
        c.add(c.multiply(input_tokens_bound, price.max_input_rate), c.multiply(max_tokens, price.output)), MTOK
    )
