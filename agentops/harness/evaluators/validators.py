"""Output validators: blocking checks on a run's final answer, configured on the prompt version.

A validator is a dict (``ResolvedPrompt.validators``)::

    {"type": "json_schema", "schema": {...}}
    {"type": "must_contain", "text": "TX-", "case_sensitive": false}
    {"type": "regex", "pattern": "^Ticket #\\\\d+"}
    {"type": "judge", "rubric": "Does the answer cite the policy?", "threshold": 0.7}

:func:`check` returns the failures, each a sentence the model can act on. A judge validator is a
model call: the caller passes ``judge(rubric, text) -> (score, reason)``, which goes through the
same gateway and cost caps as the run's own calls (see :mod:`agentops.harness.online`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jsonschema

TYPES = ("json_schema", "must_contain", "regex", "judge")
DEFAULT_RETRIES = 2
MAX_RETRIES = 10

Judge = Callable[[str, str, Mapping[str, Any]], tuple[float, str]]


def problems(config: Any) -> list[str]:
    """What is wrong with a validator list as configured (empty: valid)."""
    if not isinstance(config, list | tuple):
        return ["validators must be a list"]
    out = []
    for i, v in enumerate(config):
        where = f"validators[{i}]"
        if not isinstance(v, Mapping) or v.get("type") not in TYPES:
            out.append(f"{where}: type must be one of {', '.join(TYPES)}")
            continue
        kind = v["type"]
        if kind == "json_schema":
            try:
                jsonschema.Draft202012Validator.check_schema(v.get("schema"))
            except jsonschema.SchemaError as exc:
                out.append(f"{where}: invalid JSON schema: {exc.message[:200]}")
        elif kind == "must_contain" and not (isinstance(v.get("text"), str) and v["text"]):
            out.append(f"{where}: must_contain needs a non-empty 'text'")
        elif kind == "regex":
            try:
                re.compile(str(v.get("pattern", "")))
            except re.error as exc:
                out.append(f"{where}: the regex does not compile: {exc}")
        elif kind == "judge":
            threshold = v.get("threshold", 0.5)
            if not isinstance(v.get("rubric"), str) or not v["rubric"].strip():
                out.append(f"{where}: judge needs a 'rubric'")
            if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
                out.append(f"{where}: threshold must be between 0 and 1")
    return out


def _parse_json(text: str) -> Any:
    stripped = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    return json.loads(fenced.group(1) if fenced else stripped)


def check(config: Iterable[Mapping[str, Any]], text: str, *, judge: Judge | None = None) -> list[str]:
    failures: list[str] = []
    for v in config:
        kind = v.get("type")
        if kind == "json_schema":
            try:
                data = _parse_json(text)
            except json.JSONDecodeError as exc:
                failures.append(f"The answer must be JSON matching the schema; it is not valid JSON ({exc.msg}).")
                continue
            error = next(iter(jsonschema.Draft202012Validator(v.get("schema") or {}).iter_errors(data)), None)
            if error is not None:
                path = "/".join(str(p) for p in error.absolute_path) or "(root)"
                failures.append(f"The JSON answer does not match the schema at {path}: {error.message[:300]}")
        elif kind == "must_contain":
            needle = str(v.get("text", ""))
            hay, want = (text, needle) if v.get("case_sensitive") else (text.casefold(), needle.casefold())
            if want not in hay:
                failures.append(f"The answer must contain {needle!r}.")
        elif kind == "regex":
            if not re.search(str(v.get("pattern", "")), text, re.MULTILINE):
                failures.append(f"The answer must match the pattern {v.get('pattern')!r}.")
        elif kind == "judge" and judge is not None:
            threshold = float(v.get("threshold", 0.5))
            score, reason = judge(str(v.get("rubric", "")), text, v)
            if score < threshold:
                failures.append(f"A reviewer scored the answer {score:.2f} (needs {threshold:.2f}) on: {v.get('rubric')}. {reason}".strip())
    return failures


def feedback_text(failures: list[str], *, attempt: int, retries: int) -> str:
    lines = "\n".join(f"- {f}" for f in failures)
    return (f"[AgentOps output validation, attempt {attempt} of {retries}] Your final answer did not pass these checks:\n{lines}\n"
            "Write the final answer again so that it passes them.")
