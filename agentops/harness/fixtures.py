"""Tool fixtures for eval runs: what a tool answers in a case, instead of running for real.

A run is an eval run when its ``metadata["eval"]`` is set (the evals app submits them so, with the
case's fixtures in ``metadata["eval"]["fixtures"]``). In an eval run a ``write`` or
``irreversible`` tool never executes: it answers from the first fixture that matches its name and
arguments, else with a clear ``no_fixture`` error result. A ``read`` tool answers from a matching
fixture when there is one, else runs for real. A fixture::

    {"tool": "issue_refund", "arguments": {"transaction_id": "TX-5001"}, "result": {...}, "is_error": false}

``arguments`` (optional) must be included in the call (numbers compared as decimals); ``result``
is any JSON value (a string is sent as is).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from agentops.tools.registry import ToolOutcome, ToolSpec


def eval_metadata(metadata: Any) -> dict[str, Any] | None:
    """The run's eval settings, or None for a production run."""
    value = metadata.get("eval") if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else None


def decimal_or_none(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def arguments_match(expected: dict[str, Any], actual: Any) -> bool:
    """Every expected key is in ``actual`` with an equal value (numbers compared as decimals)."""
    if not isinstance(actual, dict):
        return False
    for key, want in expected.items():
        if key not in actual:
            return False
        got = actual[key]
        if isinstance(want, dict):
            if not arguments_match(want, got):
                return False
            continue
        w, g = decimal_or_none(want), decimal_or_none(got)
        if w is not None and g is not None and not isinstance(want, bool) and not isinstance(got, bool):
            if w != g:
                return False
        elif want != got:
            return False
    return True


def find_fixture(fixtures: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
    for fixture in fixtures if isinstance(fixtures, list) else []:
        if isinstance(fixture, dict) and fixture.get("tool") == name and arguments_match(fixture.get("arguments") or {}, arguments):
            return fixture
    return None


def answer(metadata: Any, spec: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome | None:
    """The fixture's answer for this call of an eval run; None runs the tool for real."""
    settings = eval_metadata(metadata)
    if settings is None:
        return None
    fixture = find_fixture(settings.get("fixtures"), spec.name, arguments)
    if fixture is None:
        if spec.side_effect == "read":
            return None
        content = json.dumps({"error": {"type": "no_fixture", "message": (
            f"{spec.name} is a {spec.side_effect} tool: in an eval run it answers only from the case's fixtures, "
            "and none matches these arguments. It was not executed.")}})
        return ToolOutcome(content=content, is_error=True, error_class="no_fixture", size=len(content))
    result = fixture.get("result")
    content = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, sort_keys=True)
    is_error = bool(fixture.get("is_error"))
    return ToolOutcome(content=content, is_error=is_error, error_class="fixture_error" if is_error else "", size=len(content))
