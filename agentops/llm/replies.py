"""What the scripted Messages API answers: ids, token estimates, the ``Message`` body and its SSE
stream for a scenario step, and error bodies in the recorded shapes. Pure functions of their input
(the same scenario, step and conversation give the same reply); ``agentops.llm.scripted`` serves them.

(Over 400 lines on purpose: the cache accounting needs the token estimate, so they stay together
rather than import each other.)
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentops.llm.scenario import ErrorSpec, Scenario, Step

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

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


def new_request_id() -> str:
    # Request ids name an HTTP exchange, not a conversation point, so they are random, as the real ones.
    return "req_011C" + "".join(secrets.choice(_BASE62) for _ in range(20))


def compact_json(value: Any) -> bytes:
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
    return max(1, math.ceil(len(compact_json(_uncached(payload))) / 4))


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


# The notice the harness adds to the first message when it trims the context (agentops.harness.context).
_TRIM_NOTICE = re.compile(r"^\[AgentOps: (\d+) earlier messages were omitted")


def step_of(messages: list[Any]) -> int:
    """The conversation step: how many assistant turns the request already carries, counting the ones
    a trimmed context left out (its notice says how many messages: half of them were the assistant's),
    so a long scripted run still moves through its steps after the harness trims it."""
    steps = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    content = first.get("content")
    for block in content if isinstance(content, list) else []:
        m = _TRIM_NOTICE.match(block.get("text", "")) if isinstance(block, dict) and isinstance(block.get("text"), str) else None
        if m:
            steps += int(m.group(1)) // 2
    return steps


def conversation_fingerprint(body: dict[str, Any], header: str | None) -> str:
    if header:
        return hashlib.sha256(f"key:{header}".encode()).hexdigest()[:16]
    messages = body.get("messages") or []
    first = messages[0] if messages else None
    return hashlib.sha256(compact_json({"system": body.get("system", ""), "first": first})).hexdigest()[:16]


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


def check_tool_pairs(messages: list[Any]) -> str | None:
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
    request_id = new_request_id()
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
    return ScriptedReply(spec.status, headers, compact_json(body), delay_ms)


def check_sampling(body: dict[str, Any]) -> str | None:
    """The real API's 400 for out-of-range sampling fields (temperature, top_p, top_k, stop_sequences)."""
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
            return f"{key}: Input should be less than or equal to 1"
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        return "top_k: Input should be greater than or equal to 0"
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(x, str) and x for x in stops)):
        return "stop_sequences: Input should be a valid list of non-empty strings"
    return None


def invalid_request(message: str) -> ScriptedReply:
    return error_reply(ErrorSpec(status=400, type="invalid_request_error", message=message))


def build_message(
    scenario: Scenario, step_index: int, body: dict[str, Any], conversation: str
) -> dict[str, Any]:
    """The ``Message`` body for ``step_index`` of ``scenario`` (pure: same inputs, same output)."""
    step = scenario.step_for(step_index, body)
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
    output_tokens = max(1, math.ceil(len(compact_json(content)) / 4))
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
    return b"event: " + name.encode() + b"\ndata: " + compact_json(data) + b"\n\n"


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
