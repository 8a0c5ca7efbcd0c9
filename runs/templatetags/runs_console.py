"""Formatting for the runs console: durations, pretty JSON (money and counts: ``{% load money %}``)."""

from __future__ import annotations

import json
import re
from typing import Any

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from agentops.harness.evaluators import DANGER_FLAGS

register = template.Library()


@register.filter
def duration(seconds: Any) -> str:
    if seconds is None or seconds == "":
        return "—"
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "—"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


@register.filter
def ms(value: Any) -> str:
    if value is None or value == "":
        return "—"
    try:
        return duration(float(value) / 1000)
    except (TypeError, ValueError):
        return "—"


@register.filter
def pretty_json(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def compact_json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


@register.filter
def soft_breaks(value: Any) -> str:
    """Escaped text with a line-break opportunity after each ``_ . / - @`` so ``awaiting_approval``
    or ``search_knowledge_base`` wraps at a word in a narrow column instead of mid-word."""
    # Safe: the text is escaped first, and the only markup added is <wbr>.
    return mark_safe(_BREAK_AFTER.sub(r"\1<wbr>", str(conditional_escape("" if value is None else value))))  # noqa: S308


_BREAK_AFTER = re.compile(r"([_./@-])")


@register.filter
def readable_rules(value: Any) -> list[dict[str, str]]:
    """An allow-list or threshold dict as rows a person reads: ``{"domains": ["a.com", "b.com"]}`` ->
    ``[{"name": "domains", "value": "a.com, b.com"}]``; names with underscores as words."""
    if not isinstance(value, dict):
        return []
    rows = []
    for name, item in sorted(value.items()):
        if isinstance(item, (list, tuple)):
            text = ", ".join(str(v) for v in item) or "none"
        elif isinstance(item, bool):
            text = "yes" if item else "no"
        elif isinstance(item, dict):
            text = compact_json(item)
        else:
            text = str(item)
        rows.append({"name": str(name).replace("_", " "), "value": text})
    return rows


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    """``mapping|lookup:key`` — a dict entry by a variable key (None when missing)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def first_sentence(text: Any) -> str:
    text = str(text or "").strip()
    # A sentence ends at ". " before a capital letter, so "e.g. a page" does not end it.
    match = _SENTENCE_END.search(text)
    end = match.start() + 1 if match else len(text)
    return text[:end] if end <= 200 else text[:200].rstrip() + "…"


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.\s+(?=[A-Z])")


@register.filter
def flag_class(flag: Any) -> str:
    """CSS class of an online evaluator flag: red when the run may have done or said something wrong."""
    return "danger" if flag in DANGER_FLAGS else "warn"
