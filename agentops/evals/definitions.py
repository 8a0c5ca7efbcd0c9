"""What a case is, as people and programs write it: a JSON object (a form, the API, a JSONL line).

:func:`case_problems` lists every problem with one definition, each with its place;
:func:`parse_jsonl` reads an import, line by line, and lists every bad line. The views and the API
answer 400 with these problems, so a bad suite never half-imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentops.evals.checks import check_problems
from agentops.jsoninput import JsonInputError, loads

CASE_FIELDS = {"name", "input", "checks", "critical", "tags", "fixtures", "metadata"}
MAX_INPUT_CHARS = 100_000
MAX_CASES_PER_IMPORT = 2000


def fixture_problems(fixtures: Any, *, known_tools: Iterable[str] | None, where: str = "fixtures") -> list[str]:
    if not isinstance(fixtures, list):
        return [f"{where} must be a list of {{\"tool\", \"arguments\", \"result\", \"is_error\"}} objects"]
    tools = set(known_tools) if known_tools is not None else None
    problems = []
    for i, fixture in enumerate(fixtures):
        at = f"{where}[{i}]"
        if not isinstance(fixture, dict):
            problems.append(f"{at}: a fixture must be an object")
            continue
        extra = sorted(set(fixture) - {"tool", "arguments", "result", "is_error"})
        if extra:
            problems.append(f"{at}: unknown field {', '.join(repr(str(e)[:50]) for e in extra)}")
        name = fixture.get("tool")
        if not isinstance(name, str) or not name:
            problems.append(f"{at}: tool must be a tool name")
        elif tools is not None and name not in tools:
            problems.append(f"{at}: unknown tool {name[:100]!r}")
        if "arguments" in fixture and not isinstance(fixture["arguments"], dict):
            problems.append(f"{at}: arguments must be an object")
        if "result" not in fixture:
            problems.append(f"{at}: result is required (any JSON value)")
        if "is_error" in fixture and not isinstance(fixture["is_error"], bool):
            problems.append(f"{at}: is_error must be true or false")
    return problems


def case_problems(data: Any, *, known_tools: Iterable[str] | None, where: str = "case") -> list[str]:
    """Every problem with one case definition (empty: valid)."""
    if not isinstance(data, dict):
        return [f"{where}: a case must be a JSON object"]
    known = list(known_tools) if known_tools is not None else None
    problems = [f"{where}: unknown field {k[:50]!r}" for k in sorted(set(data) - CASE_FIELDS)]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        problems.append(f"{where}.name: a non-empty name of at most 200 characters is required")
    text = data.get("input")
    if not isinstance(text, str) or not text.strip():
        problems.append(f"{where}.input: a non-empty input is required")
    elif len(text) > MAX_INPUT_CHARS or "\x00" in text:
        problems.append(f"{where}.input: at most {MAX_INPUT_CHARS} characters, no NUL bytes")
    problems += check_problems(data.get("checks", []), known_tools=known, where=f"{where}.checks")
    problems += fixture_problems(data.get("fixtures", []), known_tools=known, where=f"{where}.fixtures")
    if "critical" in data and not isinstance(data["critical"], bool):
        problems.append(f"{where}.critical: must be true or false")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 50 for t in tags) or len(tags) > 20:
        problems.append(f"{where}.tags: a list of at most 20 strings of 1 to 50 characters")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        problems.append(f"{where}.metadata: must be an object")
    return problems


def clean_case(data: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a valid definition, defaults filled in."""
    return {
        "name": data["name"].strip(), "input": data["input"], "checks": data.get("checks", []),
        "critical": bool(data.get("critical", False)), "tags": sorted(set(data.get("tags", []))),
        "fixtures": data.get("fixtures", []), "metadata": data.get("metadata", {}),
    }


def parse_jsonl(text: str, *, known_tools: Iterable[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
    """(cases, problems) of a JSONL import; any problem means nothing should be imported."""
    known = list(known_tools) if known_tools is not None else None
    cases: list[dict[str, Any]] = []
    problems: list[str] = []
    names: dict[str, int] = {}
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return [], ["the file has no cases (one JSON object per line)"]
    if len(lines) > MAX_CASES_PER_IMPORT:
        return [], [f"at most {MAX_CASES_PER_IMPORT} cases per import"]
    for n, line in lines:
        try:
            data = loads(line)
        except JsonInputError as exc:
            problems.append(f"line {n}: invalid JSON ({exc.message})")
            continue
        found = case_problems(data, known_tools=known, where=f"line {n}")
        if found:
            problems += found
            continue
        case = clean_case(data)
        if case["name"] in names:
            problems.append(f"line {n}: the name {case['name'][:100]!r} is already used on line {names[case['name']]}")
            continue
        names[case["name"]] = n
        cases.append(case)
    return cases, problems
