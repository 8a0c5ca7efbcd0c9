"""Scenario files of the scripted Messages API: their schema, parsing and cache, and which model
names the scripted API accepts (the SDK's own list, minus retired models, plus a scenario's extras).

Schema and examples: ``agentops/llm/scenarios/README.md``; the API that plays them: ``agentops.llm.scripted``.
"""

from __future__ import annotations

import datetime
import json
import re
import threading
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import Model

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")

# Error bodies follow the recorded shapes in shared/reference/anthropic_responses/ (429, 400, 404,
# 529): {"type": "error", "error": {"type", "message"}, "request_id"}, plus a request-id header
# and x-should-retry ("true" on the recorded 429/529, "false" on the recorded 400/404).
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "api_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

class ScenarioError(ValueError):
    """A scenario is unknown or malformed (answered as a 400 ``invalid_request_error``)."""


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class ErrorSpec:
    status: int
    type: str
    message: str | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    should_retry: bool | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> ErrorSpec:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("status"), int)
            or not 400 <= raw["status"] <= 599
        ):
            raise ScenarioError(f"{where}: an error needs an integer 'status' between 400 and 599")
        status = raw["status"]
        for key in ("retry_after", "retry_after_ms"):
            if raw.get(key) is not None and not isinstance(raw[key], int | float):
                raise ScenarioError(f"{where}.{key}: must be a number")
        return cls(
            status=status,
            type=str(raw.get("type") or _ERROR_TYPES.get(status, "api_error")),
            message=raw.get("message"),
            retry_after=raw.get("retry_after"),
            retry_after_ms=raw.get("retry_after_ms"),
            should_retry=raw.get("should_retry"),
        )


@dataclass(frozen=True)
class Step:
    content: list[dict[str, Any]]
    stop_reason: str
    usage: dict[str, Any] = field(default_factory=dict)
    errors: list[ErrorSpec] = field(default_factory=list)
    errors_every_attempt: ErrorSpec | None = None
    fail_first_requests: int = 0
    fail_first_error: ErrorSpec | None = None
    errors_for_models: frozenset[str] | None = None
    errors_except_models: frozenset[str] | None = None
    delay_ms: int = 0
    replay_sse: Path | None = None
    replay_json: Path | None = None
    # Streaming only: the pause between two SSE events (the demo "types"), and a cut: the first
    # ``cut_stream_count`` streams of this step end after ``cut_stream_after`` events without
    # message_stop, as a dropped connection does (counted like ``fail_first_requests``).
    pace_ms: int = 0
    cut_stream_after: int | None = None
    cut_stream_count: int = 0
    # Replies in place of this one when the request reads a certain way: (strings that must all be in
    # the request's text, the step to answer instead), first match wins (``branches`` in the README).
    branches: tuple[tuple[tuple[str, ...], Step], ...] = ()

    def errors_apply_to(self, model: str) -> bool:
        if self.errors_for_models is not None and model not in self.errors_for_models:
            return False
        return not (self.errors_except_models is not None and model in self.errors_except_models)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    steps: list[Step]
    models: frozenset[str] = frozenset()

    def step(self, index: int) -> Step:
        # Past the end, the last step repeats: a scenario whose last step calls a tool never ends
        # (`loop_forever`, `never_ends`); one whose last step is end_turn keeps answering it.
        return self.steps[min(index, len(self.steps) - 1)]

    def step_for(self, index: int, body: dict[str, Any]) -> Step:
        """The step for ``index``, or the first of its branches whose strings are all in the request's text."""
        step = self.step(index)
        if step.branches:
            text = request_text(body)
            for needles, branch in step.branches:
                if all(n in text for n in needles):
                    return branch
        return step


def request_text(body: dict[str, Any]) -> str:
    """The text a model reads in a request: the system prompt, the messages' text and tool results."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key in ("text", "content"):
                if key in value:
                    walk(value[key])

    walk(body.get("system"))
    walk(body.get("messages"))
    return "\n".join(parts)


def _parse_block(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a content block must be an object")
    kind = raw.get("type")
    if kind == "text":
        if not isinstance(raw.get("text"), str):
            raise ScenarioError(f"{where}: a text block needs a string 'text'")
        return {"type": "text", "text": raw["text"]}
    if kind == "tool_use":
        if not isinstance(raw.get("name"), str) or not isinstance(raw.get("input", {}), dict):
            raise ScenarioError(f"{where}: a tool_use block needs a string 'name' and an object 'input'")
        block = {"type": "tool_use", "name": raw["name"], "input": raw.get("input", {})}
        if raw.get("partial_json") is not None:
            if not isinstance(raw["partial_json"], str):
                raise ScenarioError(f"{where}.partial_json: must be a string")
            block["partial_json"] = raw["partial_json"]
        return block
    raise ScenarioError(f"{where}: block type must be 'text' or 'tool_use', not {kind!r}")


def _non_negative_int(raw: dict[str, Any], key: str, where: str, default: int = 0) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ScenarioError(f"{where}.{key}: must be an integer >= 0")
    return value


def _parse_branches(raw: Any, where: str, base: Path, pace_ms: int) -> tuple[tuple[tuple[str, ...], Step], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ScenarioError(f"{where}: must be a list")
    branches = []
    for i, b in enumerate(raw):
        needles = b.get("when_request_contains") if isinstance(b, dict) else None
        if isinstance(needles, str):
            needles = [needles]
        if not isinstance(needles, list) or not needles or not all(isinstance(n, str) and n for n in needles):
            raise ScenarioError(f"{where}[{i}].when_request_contains: a string or a non-empty list of strings")
        if "branches" in b:
            raise ScenarioError(f"{where}[{i}]: a branch cannot have branches")
        branches.append((tuple(needles), _parse_step(b, f"{where}[{i}]", base, pace_ms)))
    return tuple(branches)


def _parse_step(raw: Any, where: str, base: Path, pace_ms: int = 0) -> Step:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: a step must be an object")
    content = [_parse_block(b, f"{where}.content[{i}]") for i, b in enumerate(raw.get("content") or [])]
    has_tool = any(b["type"] == "tool_use" for b in content)
    stop_reason = raw.get("stop_reason") or ("tool_use" if has_tool else "end_turn")
    errors_raw = raw.get("errors") or []
    if not isinstance(errors_raw, list):
        raise ScenarioError(f"{where}.errors: must be a list")
    ffr = raw.get("fail_first_requests")
    ffr_count, ffr_error = 0, None
    if ffr is not None:
        if not isinstance(ffr, dict) or not isinstance(ffr.get("count"), int) or ffr["count"] < 0:
            raise ScenarioError(f"{where}.fail_first_requests: needs an integer 'count' >= 0 and an error")
        ffr_count = ffr["count"]
        ffr_error = ErrorSpec.parse(
            {k: v for k, v in ffr.items() if k != "count"}, f"{where}.fail_first_requests"
        )

    def models(key: str) -> frozenset[str] | None:
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
            raise ScenarioError(f"{where}.{key}: must be a list of model ids")
        return frozenset(value)

    def path(key: str) -> Path | None:
        value = raw.get(key)
        if value is None:
            return None
        resolved = (base / value).resolve()
        if not resolved.is_file():
            raise ScenarioError(f"{where}.{key}: no file {value}")
        return resolved

    usage = raw.get("usage") or {}
    if not isinstance(usage, dict):
        raise ScenarioError(f"{where}.usage: must be an object")
    delay_ms = _non_negative_int(raw, "delay_ms", where)
    cut = raw.get("cut_stream")
    cut_after, cut_count = None, 0
    if cut is not None:
        if not isinstance(cut, dict):
            raise ScenarioError(f"{where}.cut_stream: must be an object {{after_events, count}}")
        cut_after = _non_negative_int(cut, "after_events", f"{where}.cut_stream")
        cut_count = _non_negative_int(cut, "count", f"{where}.cut_stream", 1)
    return Step(
        content=content,
        stop_reason=str(stop_reason),
        usage=usage,
        errors=[ErrorSpec.parse(e, f"{where}.errors[{i}]") for i, e in enumerate(errors_raw)],
        errors_every_attempt=(
            ErrorSpec.parse(raw["errors_every_attempt"], f"{where}.errors_every_attempt")
            if raw.get("errors_every_attempt") is not None
            else None
        ),
        fail_first_requests=ffr_count,
        fail_first_error=ffr_error,
        errors_for_models=models("errors_for_models"),
        errors_except_models=models("errors_except_models"),
        delay_ms=delay_ms,
        replay_sse=path("replay_sse"),
        replay_json=path("replay_json"),
        pace_ms=_non_negative_int(raw, "pace_ms", where, pace_ms),
        cut_stream_after=cut_after,
        cut_stream_count=cut_count,
        branches=_parse_branches(raw.get("branches"), f"{where}.branches", base, pace_ms),
    )


def parse_scenario(data: Any, *, name: str, base: Path = SCENARIO_DIR) -> Scenario:
    """Validate a scenario document (see the README next to the scenario files)."""
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise ScenarioError(f"scenario {name!r}: needs a non-empty 'steps' list")
    pace_ms = _non_negative_int(data, "pace_ms", f"scenario {name!r}")
    steps = [
        _parse_step(s, f"scenario {name!r} steps[{i}]", base, pace_ms) for i, s in enumerate(data["steps"])
    ]
    extra_models = data.get("models") or []
    if not isinstance(extra_models, list):
        raise ScenarioError(f"scenario {name!r}: 'models' must be a list")
    return Scenario(
        name=name,
        description=str(data.get("description", "")),
        steps=steps,
        models=frozenset(str(m) for m in extra_models),
    )


_cache_lock = threading.Lock()
_scenario_cache: dict[tuple[str, int], Scenario] = {}


def scenario_path(name: str) -> Path:
    """The file behind a scenario name: ``scenarios/<name>.json``, or ``name`` itself when it is a
    path to a ``.json`` file (tests write their own). Raises :class:`ScenarioError` when unknown."""
    if _NAME_RE.match(name):
        path = SCENARIO_DIR / f"{name}.json"
    elif name.endswith(".json"):
        path = Path(name)
    else:
        raise ScenarioError(f"unknown scenario: {name!r}")
    if not path.is_file():
        raise ScenarioError(f"unknown scenario: {name!r}")
    return path


def load_scenario(name: str) -> Scenario:
    """Load (and cache by file modification time) the scenario ``name``."""
    path = scenario_path(name)
    key = (str(path.resolve()), path.stat().st_mtime_ns)
    with _cache_lock:
        cached = _scenario_cache.get(key)
    if cached is not None:
        return cached
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"scenario {name!r}: not readable JSON ({exc})")
    scenario = parse_scenario(data, name=name, base=path.parent)
    with _cache_lock:
        _scenario_cache[key] = scenario
    return scenario


def scenario_names() -> list[str]:
    """The packaged scenario names (the files in ``agentops/llm/scenarios/``)."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


# --------------------------------------------------------------------------- models


def _sdk_model_ids() -> frozenset[str]:
    ids: set[str] = set()
    for arg in typing.get_args(Model):
        ids.update(a for a in typing.get_args(arg) if isinstance(a, str))
    return frozenset(ids)


_KNOWN_MODELS = _sdk_model_ids()
# Current-family ids with or without a date suffix, and the dated Claude 3.x ids.
_MODEL_RE = re.compile(
    r"^claude-(?:(?:opus|sonnet|haiku|fable|mythos)-\d+(?:-\d+)?(?:-\d{8})?"
    r"|3(?:-[57])?-(?:opus|sonnet|haiku)-(?:\d{8}|latest))$"
)


def _retired_models() -> dict[str, datetime.date]:
    """The SDK's deprecated models with their end-of-life dates ("June 15th, 2026")."""
    retired = {}
    for model, when in DEPRECATED_MODELS.items():
        try:
            retired[model] = datetime.datetime.strptime(
                re.sub(r"(\d)(st|nd|rd|th)", r"\1", when), "%B %d, %Y"
            ).date()
        except ValueError:
            continue
    return retired


_RETIREMENTS = _retired_models()


def is_known_model(model: str, scenario: Scenario | None = None) -> bool:
    """Whether the scripted API serves ``model`` (else it answers 404 ``not_found_error`` like the real one).

    A scenario's ``models`` are always served; a model past its end-of-life date (the SDK's
    ``DEPRECATED_MODELS``) is not, as on the real API; otherwise the SDK's model ids and ids of the
    current families (with or without a date suffix) are.
    """
    if scenario is not None and model in scenario.models:
        return True
    retires = _RETIREMENTS.get(model)
    if retires is not None and retires <= datetime.date.today():
        return False
    return model in _KNOWN_MODELS or bool(_MODEL_RE.match(model))
