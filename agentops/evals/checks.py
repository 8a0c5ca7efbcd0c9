"""The check engine: what a case's checks say about one finished case run. Pure functions.

A check is a JSON object with a ``type``; :data:`CHECK_TYPES` lists them with the fields each
takes. :func:`check_problems` says what is wrong with a list of checks (for forms, the API and
JSONL imports: every problem, each with its place); :func:`evaluate` gives one
:class:`Verdict` per check for an :class:`Observation` of the run. The LLM judge is the only check
that calls a model; it is given as a callable so this module stays pure (see ``evals.scoring``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agentops.harness.fixtures import arguments_match
from agentops.harness.fixtures import decimal_or_none as _number
from tenants.money import usd_display

# type -> (required fields, optional fields)
CHECK_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "contains": (("value",), ("case_sensitive",)),
    "not_contains": (("value",), ("case_sensitive",)),
    "regex": (("pattern",), ("flags",)),
    "json_schema": (("schema",), ()),
    "tool_called": (("tool",), ("arguments", "succeeded")),
    "tool_not_called": (("tool",), ()),
    "max_turns": (("value",), ()),
    "max_cost": (("value",), ()),
    "status": (("value",), ()),
    "judge": (("rubric",), ("threshold", "model")),
}
COMMON_FIELDS = ("type", "name")
REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
RUN_STATUSES = ("succeeded", "failed", "capped", "cancelled")
MAX_TURNS_LIMIT = 500
MAX_PATTERN_CHARS = 2000
DEFAULT_JUDGE_THRESHOLD = 0.7


@dataclass
class ToolUse:
    name: str
    arguments: dict[str, Any]
    is_error: bool = False
    status: str = ""


@dataclass
class Observation:
    """What a case run did, as the checks read it."""
    output: str
    tool_calls: list[ToolUse] = field(default_factory=list)
    turns: int = 0
    cost: Decimal = Decimal(0)
    status: str = "succeeded"
    outcome: str = ""
    input: str = ""


@dataclass
class Verdict:
    type: str
    name: str
    passed: bool
    reason: str
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# A judge takes (rubric, observation) and returns (score 0..1, reason); it raises JudgeError when
# it cannot give one (the model call failed, was capped, or answered something unparseable).
Judge = Callable[[str, "Observation", dict[str, Any]], tuple[float, str]]


class JudgeError(Exception):
    pass


# --- validation ---------------------------------------------------------------------------------


def check_problems(checks: Any, *, known_tools: Iterable[str] | None = None, where: str = "checks") -> list[str]:
    """Every problem with a list of checks; empty means valid. ``known_tools`` None skips tool names."""
    if not isinstance(checks, list):
        return [f"{where} must be a list of check objects"]
    tools = set(known_tools) if known_tools is not None else None
    problems: list[str] = []
    for i, check in enumerate(checks):
        at = f"{where}[{i}]"
        if not isinstance(check, dict):
            problems.append(f"{at}: a check must be an object")
            continue
        kind = check.get("type")
        if kind not in CHECK_TYPES:
            problems.append(f"{at}: unknown check type {str(kind)[:50]!r}; one of {', '.join(CHECK_TYPES)}")
            continue
        required, optional = CHECK_TYPES[kind]
        missing = [f for f in required if f not in check]
        if missing:
            problems.append(f"{at} ({kind}): missing {', '.join(missing)}")
            continue
        extra = sorted(set(check) - set(required) - set(optional) - set(COMMON_FIELDS))
        if extra:
            problems.append(f"{at} ({kind}): unknown field {', '.join(repr(str(e)[:50]) for e in extra)}")
        if "name" in check and not (isinstance(check["name"], str) and len(check["name"]) <= 100):
            problems.append(f"{at}: name must be a string of at most 100 characters")
        problems.extend(f"{at} ({kind}): {p}" for p in _field_problems(kind, check, tools))
    return problems


def _field_problems(kind: str, check: dict[str, Any], tools: set[str] | None) -> list[str]:
    if kind in ("contains", "not_contains"):
        out = [] if isinstance(check["value"], str) and check["value"] else ["value must be a non-empty string"]
        if "case_sensitive" in check and not isinstance(check["case_sensitive"], bool):
            out.append("case_sensitive must be true or false")
        return out
    if kind == "regex":
        pattern, flags = check["pattern"], check.get("flags", "")
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN_CHARS:
            return [f"pattern must be a non-empty string of at most {MAX_PATTERN_CHARS} characters"]
        if not isinstance(flags, str) or set(flags) - set(REGEX_FLAGS):
            return [f"flags must be a string of {', '.join(REGEX_FLAGS)}"]
        try:
            re.compile(pattern)
        except re.error as exc:
            return [f"pattern does not compile: {exc}"]
        return []
    if kind == "json_schema":
        if not isinstance(check["schema"], dict):
            return ["schema must be a JSON Schema object"]
        try:
            Draft202012Validator.check_schema(check["schema"])
        except SchemaError as exc:
            return [f"schema is not a valid JSON Schema: {exc.message[:200]}"]
        return []
    if kind in ("tool_called", "tool_not_called"):
        out = []
        name = check["tool"]
        if not isinstance(name, str) or not name:
            out.append("tool must be a tool name")
        elif tools is not None and name not in tools:
            out.append(f"unknown tool {name[:100]!r}")
        if "arguments" in check and not isinstance(check["arguments"], dict):
            out.append("arguments must be an object (the arguments the call must include)")
        if "succeeded" in check and not isinstance(check["succeeded"], bool):
            out.append("succeeded must be true or false")
        return out
    if kind == "max_turns":
        value = check["value"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TURNS_LIMIT:
            return [f"value must be an integer from 1 to {MAX_TURNS_LIMIT}"]
        return []
    if kind == "max_cost":
        number = _number(check["value"])
        if number is None or number < 0 or number > 1000:
            return ["value must be a decimal amount of USD from 0 to 1000, e.g. \"0.05\""]
        return []
    if kind == "status":
        return [] if check["value"] in RUN_STATUSES else [f"value must be one of {', '.join(RUN_STATUSES)}"]
    # judge
    out = []
    if not isinstance(check["rubric"], str) or not check["rubric"].strip() or len(check["rubric"]) > 10_000:
        out.append("rubric must be a non-empty string of at most 10,000 characters")
    if "threshold" in check:
        number = _number(check["threshold"])
        if number is None or not 0 <= number <= 1:
            out.append("threshold must be a number from 0 to 1")
    if "model" in check and not (isinstance(check["model"], str) and check["model"]):
        out.append("model must be a model id")
    return out


# --- evaluation ---------------------------------------------------------------------------------


def _name(check: dict[str, Any]) -> str:
    if check.get("name"):
        return str(check["name"])
    kind = check["type"]
    detail = check.get("value", check.get("pattern", check.get("tool", "")))
    return f"{kind} {detail}".strip() if kind not in ("json_schema", "judge") else kind


def _json_of(output: str) -> Any:
    text = output.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else text)


def evaluate_one(check: dict[str, Any], obs: Observation, judge: Judge | None = None) -> Verdict:
    kind, name = check["type"], _name(check)

    def verdict(passed: bool, reason: str, score: float | None = None) -> Verdict:
        return Verdict(kind, name, passed, reason, score)

    if kind in ("contains", "not_contains"):
        value = check["value"]
        sensitive = check.get("case_sensitive", False)
        found = (value in obs.output) if sensitive else (value.casefold() in obs.output.casefold())
        if kind == "contains":
            return verdict(found, f"the output {'contains' if found else 'does not contain'} {value!r}")
        return verdict(not found, f"the output {'contains' if found else 'does not contain'} {value!r}")
    if kind == "regex":
        flags = 0
        for f in check.get("flags", ""):
            flags |= REGEX_FLAGS[f]
        match = re.search(check["pattern"], obs.output, flags)
        return verdict(match is not None, f"matched {match.group(0)[:80]!r}" if match else f"no match for /{check['pattern'][:80]}/")
    if kind == "json_schema":
        try:
            value = _json_of(obs.output)
        except ValueError:
            return verdict(False, "the output is not JSON")
        errors = sorted(Draft202012Validator(check["schema"]).iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path)
            return verdict(False, f"{path}: {errors[0].message[:200]}")
        return verdict(True, "the output validates against the schema")
    if kind == "tool_called":
        calls = [c for c in obs.tool_calls if c.name == check["tool"]]
        if not calls:
            called = sorted({c.name for c in obs.tool_calls})
            return verdict(False, f"{check['tool']} was never called (called: {', '.join(called) or 'no tools'})")
        expected = check.get("arguments") or {}
        matching = [c for c in calls if arguments_match(expected, c.arguments)]
        if not matching:
            return verdict(False, f"{check['tool']} was called {len(calls)}× but never with {json.dumps(expected, sort_keys=True)[:200]}")
        if check.get("succeeded") and not any(not c.is_error for c in matching):
            return verdict(False, f"{check['tool']} was called with matching arguments but every call failed")
        return verdict(True, f"{check['tool']} was called with matching arguments" if expected else f"{check['tool']} was called")
    if kind == "tool_not_called":
        n = sum(1 for c in obs.tool_calls if c.name == check["tool"])
        return verdict(n == 0, f"{check['tool']} was called {n}×" if n else f"{check['tool']} was not called")
    if kind == "max_turns":
        return verdict(obs.turns <= check["value"], f"{obs.turns} turns (at most {check['value']})")
    if kind == "max_cost":
        limit = Decimal(str(check["value"]))
        return verdict(obs.cost <= limit, f"cost {usd_display(obs.cost)} (at most {usd_display(limit)})")
    if kind == "status":
        shown = obs.status + (f" ({obs.outcome})" if obs.outcome else "")
        return verdict(obs.status == check["value"], f"the run ended {shown}")
    # judge
    threshold = float(check.get("threshold", DEFAULT_JUDGE_THRESHOLD))
    if judge is None:
        return verdict(False, "no judge is available")
    try:
        score, reason = judge(check["rubric"], obs, check)
    except JudgeError as exc:
        return verdict(False, f"the judge gave no score: {exc}")
    return verdict(score >= threshold, f"score {score:.2f} (pass at {threshold:.2f}): {reason}"[:500], score)


def evaluate(checks: list[dict[str, Any]], obs: Observation, judge: Judge | None = None) -> list[Verdict]:
    """One verdict per check. Without a ``status`` check, the run must have succeeded (first verdict)."""
    verdicts = []
    if not any(c.get("type") == "status" for c in checks):
        verdicts.append(evaluate_one({"type": "status", "value": "succeeded", "name": "run succeeded"}, obs))
    verdicts.extend(evaluate_one(c, obs, judge) for c in checks)
    return verdicts


def parse_judge_answer(text: str) -> tuple[float, str]:
    """The judge's ``{"score": 0..1, "reason": "..."}`` from its answer (the first JSON object in it)."""
    match = re.search(r"\{.*\}", text or "", re.DOTALL)
    if not match:
        raise JudgeError("the judge's answer has no JSON object")
    try:
        data = json.loads(match.group(0))
    except ValueError:
        raise JudgeError("the judge's answer is not valid JSON")
    score = _number(data.get("score")) if isinstance(data, dict) else None
    if score is None or not 0 <= score <= 1:
        raise JudgeError("the judge's score is not a number from 0 to 1")
    return float(score), str(data.get("reason", ""))[:300]
