"""Redaction of secrets and PII before anything is logged, traced or stored for display.

The defaults catch Anthropic keys, AgentOps API keys, webhook signing secrets, bearer tokens,
e-mail addresses and card-like numbers; ``settings.PII_PATTERNS`` adds tenant-specific regexes.

Text that arrives in pieces (a streamed answer) goes through :class:`RollingRedactor`, which holds
back the tail that could still grow into a secret, so a secret split across pieces never leaks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import regex
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


def _alternation() -> str:
    extra = list(getattr(settings, "PII_PATTERNS", []) or [])
    return "|".join(f"(?:{p})" for p in DEFAULT_PATTERNS + extra)


@lru_cache(maxsize=1)
def _compiled() -> re.Pattern[str]:
    return re.compile(_alternation())


@lru_cache(maxsize=1)
def _partial() -> Any:
    # The same patterns under the ``regex`` module, whose partial matching tells whether the end
    # of a buffer could be the start of a secret (the standard ``re`` cannot). None when a
    # PII_PATTERNS entry is one ``regex`` does not take: then nothing is sent before the end.
    try:
        return regex.compile(_alternation(), flags=regex.V0)
    except regex.error:
        return None


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


class RollingRedactor:
    """Redacts text that arrives in pieces: what :meth:`feed` and :meth:`flush` return, joined,
    is ``redact`` of the whole text, and no piece ever holds part of a secret.

    Each :meth:`feed` returns the redacted text up to the first place where a secret could start
    and still be incomplete (a full or partial match touching the end of what arrived: an e-mail's
    local part, ``sk-ant-`` and a few characters, a run of digits, or a match too close to the end
    to be final); that tail waits for the next piece. :meth:`flush` (the text is complete) returns the rest. The last ``CONTEXT`` characters
    already returned are kept, so ``\\b`` and other look-behinds see the text before the cut.
    """

    CONTEXT = 64
    # A match is final once this many characters follow it: the patterns' look-aheads (``\\b``)
    # may still move its end (a card number's trailing space is part of it before a letter only).
    LOOKAHEAD = 16

    def __init__(self) -> None:
        self._buf = ""
        self._pos = 0  # self._buf[:self._pos] was returned already (kept as context)

    def feed(self, text: str) -> str:
        self._buf += text
        return self._emit(final=False)

    def flush(self) -> str:
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> str:
        pattern = _partial()
        if pattern is None:  # no partial matching: hold everything, redact the whole at the end
            return redact(self._buf) if final else ""
        out, at, cut = [], self._pos, len(self._buf)
        for match in pattern.finditer(self._buf, pos=self._pos, partial=not final):
            if not final and match.end() + (0 if match.partial else self.LOOKAHEAD) >= len(self._buf):
                cut = match.start()  # may still grow: wait for more text
                break
            if match.end() > match.start():
                out += [self._buf[at : match.start()], MASK]
                at = match.end()
        out.append(self._buf[at:cut])
        drop = max(0, cut - self.CONTEXT)
        self._buf, self._pos = self._buf[drop:], cut - drop
        return "".join(out)
