"""A scripted Messages API, served as an ``httpx2`` transport under the real ``anthropic`` client.

There is no network to Anthropic in the demo and the tests, so the SDK is given this transport
(``anthropic.Anthropic(http_client=httpx2.Client(transport=ScriptedTransport()))``) and everything
above the socket — request building, retries, ``retry-after`` handling, error classes, SSE parsing,
the stream accumulator — is the SDK's own code, exactly as in production.

Design (crash-safe, many worker processes at once):

* The reply to a request is a **pure function of (scenario, step)**, where ``step`` is the number of
  assistant turns already in the request's ``messages``. A worker that dies and a run that is
  re-scheduled on another process get the same reply for the same point of the conversation.
* Errors before success are keyed by the **attempt number**, read from the ``x-stainless-retry-count``
  header the SDK puts on every attempt (``errors``), so the SDK's own retry loop is what recovers.
* An outage that outlasts the SDK's retries (``fail_first_requests``) needs state across calls:
  a counter in Redis (``REDIS_URL``), keyed by scenario + conversation fingerprint + step, so it
  survives processes; a process-local counter is the fallback when Redis does not answer.
* Ids are deterministic: ``toolu_01…``/``msg_01…`` are hashes of scenario, conversation and step.

Scenario files and their schema: ``agentops/llm/scenarios/README.md``.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import math
import os
import re
import secrets
import threading
import time
import typing
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import redis
from anthropic.resources.messages.messages import DEPRECATED_MODELS
from anthropic.types import Model
from django.conf import settings

log = logging.getLogger(__name__)

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIO_HEADER = "x-agentops-scenario"
# Optional: a stable key for the conversation (the harness sends the run id). Without it the
# fingerprint is a hash of the system prompt and the first user message.
CONVERSATION_HEADER = "x-agentops-conversation"
DEFAULT_SCENARIO = "default"
COUNTER_TTL_S = 3600
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

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
_DEFAULT_MESSAGES: dict[str, str] = {
    # Wording of the recorded 429 (anthropic-sdk-python cassette d743d628), org id removed.
    "rate_limit_error": (
        "This request would exceed your organization's rate limit of 20,000,000 prompt bytes per hour "
        "(model: {model}). For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see "
        "the response headers for current usage. Please reduce the prompt length or the maximum tokens "
        "requested, or try again later."
    ),
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "timeout_error": "Request timed out",
    "not_found_error": "model: {model}",
    "invalid_request_error": "Invalid request",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "billing_error": "Your credit balance is too low to access the Anthropic API.",
}
_RETRYABLE = {408, 409, 429}


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


# --------------------------------------------------------------------------- counters


class _Counter:
    """Counts requests per key across processes (Redis), or per process when Redis is unreachable."""

    def __init__(self, redis_url: str | None) -> None:
        self._redis_url = redis_url
        self._redis: Any = None
        self._redis_failed = False
        self._memory: dict[str, int] = {}
        self._lock = threading.Lock()

    def _client(self) -> Any:
        if self._redis is None and self._redis_url and not self._redis_failed:
            self._redis = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2, socket_timeout=2)
        return self._redis

    def incr(self, key: str) -> int:
        client = self._client()
        if client is not None:
            try:
                pipe = client.pipeline()
                pipe.incr(key)
                pipe.expire(key, COUNTER_TTL_S)
                return int(pipe.execute()[0])
            except redis.RedisError as exc:
                log.warning("scripted API: Redis unavailable, counting in process: %s", exc)
                self._redis_failed = True
        with self._lock:
            self._memory[key] = self._memory.get(key, 0) + 1
            return self._memory[key]


def _default_redis_url() -> str | None:
    if settings.configured:
        return str(getattr(settings, "REDIS_URL", "") or "") or None
    return os.environ.get("REDIS_URL") or None


def _default_scenario() -> str:
    scenario = str(getattr(settings, "AGENTOPS_SCENARIO", "") or "") if settings.configured else ""
    if scenario:
        return scenario
    return os.environ.get("AGENTOPS_SCENARIO") or DEFAULT_SCENARIO


# --------------------------------------------------------------------------- helpers


def _b62(seed: str, length: int) -> str:
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 62)
        chars.append(_BASE62[rem])
    return "".join(chars)


def tool_use_id(scenario: str, conversation: str, step: int, index: int) -> str:
    """Deterministic ``toolu_01`` + 22 base62 chars (the length of recorded ids)."""
    return "toolu_01" + _b62(f"tool:{scenario}:{conversation}:{step}:{index}", 22)


def _request_id() -> str:
    # Request ids name an HTTP exchange, not a conversation point, so they are random, as the real ones.
    return "req_011C" + "".join(secrets.choice(_BASE62) for _ in range(20))


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The scripted ``usage.input_tokens``: UTF-8 bytes of system+messages+tools / 4.

    Deliberately below :func:`agentops.llm.gateway.input_tokens_bound` (bytes / 3 + overhead), so a
    cost reservation made from the bound always covers what the scripted API then reports.
    """
    payload = {
        "system": body.get("system", ""),
        "messages": body.get("messages", []),
        "tools": body.get("tools", []),
    }
    return max(1, math.ceil(len(_compact(_uncached(payload))) / 4))


# The shortest prompt the API caches (Sonnet/Opus; Haiku's is longer): below it, no cache.
CACHE_MIN_TOKENS = 1024
# Tokens after the last breakpoint (the API's framing of the turn), billed as plain input.
_UNCACHED_TAIL_TOKENS = 3


def _uncached(value: Any) -> Any:
    """``value`` without ``cache_control`` keys (they are instructions, not prompt tokens)."""
    if isinstance(value, dict):
        return {k: _uncached(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_uncached(v) for v in value]
    return value


def _cache_ttl(value: Any) -> str | None:
    """The ttl of the last ``cache_control`` breakpoint in ``value`` ("5m" or "1h"), None if none."""
    found = None
    if isinstance(value, dict):
        mark = value.get("cache_control")
        if isinstance(mark, dict):
            found = "1h" if mark.get("ttl") == "1h" else "5m"
        for v in value.values():
            found = _cache_ttl(v) or found
    elif isinstance(value, list):
        for v in value:
            found = _cache_ttl(v) or found
    return found


def cache_usage(body: dict[str, Any]) -> dict[str, Any] | None:
    """Plausible prompt-cache usage for a request with breakpoints (None: it has none).

    The harness puts the last breakpoint on the end of the conversation, so a request writes its
    whole prompt and the next turn's request (two messages longer) reads the previous prompt back:
    read = the previous request's prompt (system + tools + ``messages[:-2]``) when that one was long
    enough to be cached, written = the rest. Pure, like every scripted reply (a cache that expired
    between two turns is not modelled). Prompts under :data:`CACHE_MIN_TOKENS` are not cached.
    """
    ttl = _cache_ttl([body.get("system"), body.get("tools"), body.get("messages")])
    total = estimate_input_tokens(body)
    if ttl is None or total < CACHE_MIN_TOKENS:
        return None
    messages = body.get("messages") or []
    read = 0
    if len(messages) >= 3:
        previous = estimate_input_tokens({**body, "messages": messages[:-2]})
        read = previous if previous >= CACHE_MIN_TOKENS else 0
    tail = min(_UNCACHED_TAIL_TOKENS, total - read)
    written = total - read - tail
    return {
        "input_tokens": tail,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": written if ttl == "5m" else 0,
            "ephemeral_1h_input_tokens": written if ttl == "1h" else 0,
        },
    }


def step_of(messages: list[Any]) -> int:
    """The conversation step: how many assistant turns the request already carries."""
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def conversation_fingerprint(body: dict[str, Any], header: str | None) -> str:
    if header:
        return hashlib.sha256(f"key:{header}".encode()).hexdigest()[:16]
    messages = body.get("messages") or []
    first = messages[0] if messages else None
    return hashlib.sha256(_compact({"system": body.get("system", ""), "first": first})).hexdigest()[:16]


def _substitute(value: Any, step: int) -> Any:
    if isinstance(value, str):
        return value.replace("{step}", str(step))
    if isinstance(value, list):
        return [_substitute(v, step) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, step) for k, v in value.items()}
    return value


def _blocks(message: Any, kind: str) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == kind]
        if isinstance(content, list)
        else []
    )


def _check_tool_pairs(messages: list[Any]) -> str | None:
    """The real API's 400 for a broken tool_use/tool_result pairing (recorded fixture wording).

    Checked message by message: a user message's tool_results must answer tool_uses of the
    assistant message before it, and every one of those tool_uses must be answered.
    """
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        previous = messages[i - 1] if i > 0 and isinstance(messages[i - 1], dict) else {}
        prev_ids = (
            [b.get("id") for b in _blocks(previous, "tool_use")]
            if previous.get("role") == "assistant"
            else []
        )
        raw_content = message.get("content")
        content: list[Any] = raw_content if isinstance(raw_content, list) else []
        for j, block in enumerate(content):
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_result"
                and block.get("tool_use_id") not in prev_ids
            ):
                return (
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
        answered = {b.get("tool_use_id") for b in _blocks(message, "tool_result")}
        missing = [str(tid) for tid in prev_ids if tid not in answered]
        if missing:
            return (
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
    return None


# --------------------------------------------------------------------------- replies


@dataclass
class ScriptedReply:
    status: int
    headers: dict[str, str]
    body: bytes
    delay_ms: int = 0
    # A streamed reply: its SSE events, sent ``pace_ms`` apart; after ``cut_after`` events the
    # connection drops (the body ends early with a protocol error).
    events: list[bytes] | None = None
    pace_ms: int = 0
    cut_after: int | None = None


def error_reply(spec: ErrorSpec, *, model: str = "", delay_ms: int = 0) -> ScriptedReply:
    request_id = _request_id()
    message = (spec.message or _DEFAULT_MESSAGES.get(spec.type, "Error")).replace("{model}", model)
    body = {"type": "error", "error": {"type": spec.type, "message": message}, "request_id": request_id}
    should_retry = spec.should_retry
    if should_retry is None:
        should_retry = spec.status in _RETRYABLE or spec.status >= 500
    headers = {
        "content-type": "application/json",
        "request-id": request_id,
        "x-should-retry": "true" if should_retry else "false",
    }
    if spec.retry_after is not None:
        headers["retry-after"] = f"{spec.retry_after:g}"
    if spec.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{spec.retry_after_ms:g}"
    return ScriptedReply(spec.status, headers, _compact(body), delay_ms)


def _invalid(message: str) -> ScriptedReply:
    return error_reply(ErrorSpec(status=400, type="invalid_request_error", message=message))


def build_message(
    scenario: Scenario, step_index: int, body: dict[str, Any], conversation: str
) -> dict[str, Any]:
    """The ``Message`` body for ``step_index`` of ``scenario`` (pure: same inputs, same output)."""
    step = scenario.step(step_index)
    model = str(body.get("model", ""))
    content: list[dict[str, Any]] = []
    tool_index = 0
    for block in step.content:
        if block["type"] == "text":
            content.append({"type": "text", "text": _substitute(block["text"], step_index)})
        else:
            content.append(
                {
                    "type": "tool_use",
                    "id": tool_use_id(scenario.name, conversation, step_index, tool_index),
                    "name": block["name"],
                    "input": _substitute(block["input"], step_index),
                    "caller": {"type": "direct"},
                }
            )
            tool_index += 1
    raw_max = body.get("max_tokens")
    max_tokens: int = raw_max if isinstance(raw_max, int) else 4096
    output_tokens = max(1, math.ceil(len(_compact(content)) / 4))
    output_tokens = max_tokens if step.stop_reason == "max_tokens" else min(output_tokens, max_tokens)
    overrides = step.usage
    cached = cache_usage(body) or {
        "input_tokens": estimate_input_tokens(body),
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    }
    cache_creation = {
        "ephemeral_5m_input_tokens": int(
            overrides.get("cache_creation", {}).get(
                "ephemeral_5m_input_tokens", cached["cache_creation"]["ephemeral_5m_input_tokens"]
            )
        ),
        "ephemeral_1h_input_tokens": int(
            overrides.get("cache_creation", {}).get(
                "ephemeral_1h_input_tokens", cached["cache_creation"]["ephemeral_1h_input_tokens"]
            )
        ),
    }
    usage = {
        "input_tokens": int(overrides.get("input_tokens", cached["input_tokens"])),
        "cache_creation_input_tokens": int(
            overrides.get("cache_creation_input_tokens", sum(cache_creation.values()))
        ),
        "cache_read_input_tokens": int(overrides.get("cache_read_input_tokens", cached["cache_read_input_tokens"])),
        "cache_creation": cache_creation,
        "output_tokens": int(overrides.get("output_tokens", output_tokens)),
        "service_tier": "standard",
        "inference_geo": "not_available",
    }
    return {
        "model": model,
        "id": "msg_01" + _b62(f"msg:{scenario.name}:{conversation}:{step_index}:{model}", 22),
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": step.stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def _chunks(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _compact(data) + b"\n\n"


def build_sse(message: dict[str, Any], step: Step) -> bytes:
    """The ``text/event-stream`` body for ``message`` (:func:`build_sse_events` joined)."""
    return b"".join(build_sse_events(message, step))


def build_sse_events(message: dict[str, Any], step: Step) -> list[bytes]:
    """The ``text/event-stream`` events for ``message``, in the recorded event order.

    message_start, per block content_block_start (+ one ping after the first), text_delta /
    input_json_delta chunks, content_block_stop, then message_delta and message_stop. A tool_use
    block with ``partial_json`` under ``stop_reason: max_tokens`` streams that text and gets no
    content_block_stop, as in the recorded ``stream_max_tokens_truncated_tool_use`` body.
    """
    usage = message["usage"]
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1},
    }
    out = [_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        spec = step.content[index]
        if block["type"] == "text":
            out.append(
                _event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            if index == 0:
                out.append(_event("ping", {"type": "ping"}))
            for piece in _chunks(block["text"], 48):
                out.append(
                    _event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
            continue
        head = {**block, "input": {}}
        out.append(
            _event(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": head}
            )
        )
        if index == 0:
            out.append(_event("ping", {"type": "ping"}))
        truncated = "partial_json" in spec and message["stop_reason"] == "max_tokens"
        raw = spec["partial_json"] if truncated else json.dumps(block["input"], ensure_ascii=False)
        out.append(
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": ""},
                },
            )
        )
        for piece in _chunks(raw, 24):
            out.append(
                _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
            )
        if not truncated:
            out.append(_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(
        _event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
    )
    out.append(_event("message_stop", {"type": "message_stop"}))
    return out


class ScriptedAPI:
    """The request → reply logic, independent of any transport (used by :class:`ScriptedTransport`)."""

    def __init__(self, *, redis_url: str | None = None, default_scenario: str | None = None) -> None:
        self._counter = _Counter(redis_url if redis_url is not None else _default_redis_url())
        self._default_scenario = default_scenario

    def reply(self, *, method: str, path: str, headers: httpx2.Headers, body: bytes) -> ScriptedReply:
        if method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return error_reply(
                ErrorSpec(status=404, type="not_found_error", message=f"Not found: {method} {path}")
            )
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _invalid("There was an error parsing the body of your request as JSON.")
        if not isinstance(data, dict):
            return _invalid("The request body must be a JSON object.")
        name = headers.get(SCENARIO_HEADER) or self._default_scenario or _default_scenario()
        try:
            scenario = load_scenario(name)
        except ScenarioError as exc:
            return _invalid(str(exc))

        model = data.get("model")
        if not isinstance(model, str) or not model:
            return _invalid("model: Field required")
        if not is_known_model(model, scenario):
            return error_reply(ErrorSpec(status=404, type="not_found_error", message=f"model: {model}"))
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return _invalid("messages: at least one message is required")
        if path.endswith("/count_tokens"):
            return ScriptedReply(
                200,
                {"content-type": "application/json", "request-id": _request_id()},
                _compact({"input_tokens": estimate_input_tokens(data)}),
            )
        if not isinstance(data.get("max_tokens"), int) or data["max_tokens"] < 1:
            return _invalid("max_tokens: Field required (an integer >= 1)")
        pairing = _check_tool_pairs(messages)
        if pairing:
            return _invalid(pairing)

        step_index = step_of(messages)
        step = scenario.step(step_index)
        conversation = conversation_fingerprint(data, headers.get(CONVERSATION_HEADER))
        try:
            attempt = int(headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            attempt = 0

        if step.errors_apply_to(model):
            if step.errors_every_attempt is not None:
                return error_reply(step.errors_every_attempt, model=model, delay_ms=step.delay_ms)
            if step.fail_first_requests and step.fail_first_error is not None:
                key = f"agentops:scripted:{hashlib.sha256(scenario.name.encode()).hexdigest()[:12]}:{conversation}:{step_index}"
                if self._counter.incr(key) <= step.fail_first_requests:
                    return error_reply(step.fail_first_error, model=model, delay_ms=step.delay_ms)
            if attempt < len(step.errors):
                return error_reply(step.errors[attempt], model=model, delay_ms=step.delay_ms)

        request_id = _request_id()
        if data.get("stream"):
            if step.replay_sse is not None:
                events = [e + b"\n\n" for e in step.replay_sse.read_bytes().split(b"\n\n") if e.strip()]
            else:
                events = build_sse_events(build_message(scenario, step_index, data, conversation), step)
            cut_after = None
            if step.cut_stream_after is not None and step.cut_stream_count:
                key = f"agentops:scripted:cut:{hashlib.sha256(scenario.name.encode()).hexdigest()[:12]}:{conversation}:{step_index}"
                if self._counter.incr(key) <= step.cut_stream_count:
                    cut_after = step.cut_stream_after
            headers_out = {
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": request_id,
            }
            return ScriptedReply(
                200, headers_out, b"".join(events), step.delay_ms,
                events=events, pace_ms=step.pace_ms or int(getattr(settings, "AGENTOPS_SCRIPTED_PACE_MS", 0) or 0),
                cut_after=cut_after,
            )
        if step.replay_json is not None:
            payload = step.replay_json.read_bytes()
        else:
            payload = _compact(build_message(scenario, step_index, data, conversation))
        return ScriptedReply(
            200, {"content-type": "application/json", "request-id": request_id}, payload, step.delay_ms
        )


class ScriptedTransport(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """An ``httpx2`` transport answering the Messages API from scenario files.

    ``redis_url`` defaults to ``settings.REDIS_URL`` (or the ``REDIS_URL`` variable); pass ``""`` to
    count in process only. ``default_scenario`` is used when a request has no
    ``x-agentops-scenario`` header (else ``settings.AGENTOPS_SCENARIO``, else ``default``).
    """

    def __init__(self, *, redis_url: str | None = None, default_scenario: str | None = None) -> None:
        self.api = ScriptedAPI(redis_url=redis_url, default_scenario=default_scenario)

    def _reply(self, request: httpx2.Request) -> ScriptedReply:
        return self.api.reply(
            method=request.method, path=request.url.path, headers=request.headers, body=request.content
        )

    @staticmethod
    def _response(reply: ScriptedReply, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(reply.status, headers=reply.headers, content=reply.body, request=request)

    @staticmethod
    def _streamed(reply: ScriptedReply, request: httpx2.Request, content: Any) -> httpx2.Response:
        return httpx2.Response(reply.status, headers=reply.headers, content=content, request=request)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        reply = self._reply(request)
        if reply.delay_ms:
            time.sleep(reply.delay_ms / 1000)
        if reply.events is not None and (reply.pace_ms or reply.cut_after is not None):
            return self._streamed(reply, request, _paced(reply))
        return self._response(reply, request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        reply = self._reply(request)
        if reply.delay_ms:
            await asyncio.sleep(reply.delay_ms / 1000)
        if reply.events is not None and (reply.pace_ms or reply.cut_after is not None):
            return self._streamed(reply, request, _paced_async(reply))
        return self._response(reply, request)


_CUT_MESSAGE = "peer closed connection without sending complete message body (incomplete chunked read)"


def _paced(reply: ScriptedReply) -> Iterator[bytes]:
    for i, event in enumerate(reply.events or []):
        if reply.cut_after is not None and i >= reply.cut_after:
            raise httpx2.RemoteProtocolError(_CUT_MESSAGE)
        if i and reply.pace_ms:
            time.sleep(reply.pace_ms / 1000)
        yield event


async def _paced_async(reply: ScriptedReply) -> AsyncIterator[bytes]:
    for i, event in enumerate(reply.events or []):
        if reply.cut_after is not None and i >= reply.cut_after:
            raise httpx2.RemoteProtocolError(_CUT_MESSAGE)
        if i and reply.pace_ms:
            await asyncio.sleep(reply.pace_ms / 1000)
        yield event
