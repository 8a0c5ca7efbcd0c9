"""Redaction of secrets and PII before anything is logged, traced or stored for display.

The defaults catch Anthropic keys, AgentOps API keys, webhook signing secrets, bearer tokens,
e-mail addresses and card-like numbers; ``settings.PII_PATTERNS`` adds tenant-specific regexes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from django.conf import settings

DEFAULT_PATTERNS = [
    r"sk-ant-[A-Za-z0-9_\-]{8,}",
    r"aok_[A-Za-z0-9]{6,}_[A-Za-z0-9_\-]{8,}",
    r"whsec_[A-Za-z0-9+/=]{16,}",
    r"(?i:bearer)\s+[A-Za-z0-9._\-]{8,}",
    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
    r"\b(?:\d[ \-]?){13,19}\b",
]
MASK = "[REDACTED]"


@lru_cache(maxsize=1)
def _compiled() -> re.Pattern[str]:
    extra = list(getattr(settings, "PII_PATTERNS", []) or [])
    return re.compile("|".join(f"(?:{p})" for p in DEFAULT_PATTERNS + extra))


def redact(text: str) -> str:
    if not text:
        return text
    return _compiled().sub(MASK, text)


def sensitive_matches(text: str) -> int:
    """How many secrets or PII matches ``text`` holds (the online ``pii`` evaluator's count)."""
    if not text:
        return 0
    return sum(1 for _ in _compiled().finditer(text))


def redact_obj(value: Any) -> Any:
    """Redact every string inside a JSON-like structure (keys are kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value
