"""Serialisation helpers shared by the registry and the tools: JSON text for tool results, canonical
argument encoding, and truncation with an explicit note.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

DEFAULT_OUTPUT_LIMIT = 16_000


def _json_default(value: Any) -> Any:
    # Money stays exact: a Decimal becomes its string, never a float.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json_text(value: Any) -> str:
    """JSON text for a tool result (non-ASCII kept readable, Decimals as strings, no NaN)."""
    return json.dumps(value, ensure_ascii=False, default=_json_default, allow_nan=False)


def canonical_arguments(arguments: Any) -> str:
    """Sorted-keys compact JSON: equal arguments give equal text (repetition breaker, hashing)."""
    return json.dumps(
        arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def arguments_sha256(arguments: Any) -> str:
    return hashlib.sha256(canonical_arguments(arguments).encode("utf-8")).hexdigest()


def truncate_output(text: str, limit: int = DEFAULT_OUTPUT_LIMIT) -> str:
    """Keep the first ``limit`` characters and say so: the model must know it did not see everything."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[truncated: {limit} of {len(text)} characters shown]"
