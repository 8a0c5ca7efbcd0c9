"""The model gateway: the one module the harness calls to talk to Claude.

(Just over 400 lines on purpose: client, routing, input bound and the call with its error mapping
are the one surface the loop uses; the scripted API it can mount lives in scripted/scenario/replies.)

* :func:`get_client` gives the real ``anthropic.Anthropic`` client. In scripted mode (a scenario is
  configured, or there is no API key) the same client runs over
  :class:`agentops.llm.scripted.ScriptedTransport`; otherwise it calls the real API. There is no
  second code path: the SDK builds, retries and parses in both.
* :func:`create_message` makes one model call, always streamed (``client.messages.stream``, the same
  path for the real and the scripted API): text and tool-input deltas go to ``on_delta`` as they
  arrive, and the call returns the SDK's accumulated final message. A stream that breaks off
  (connection dropped, an ``error`` event, no ``message_stop``) is transient. Retries are the SDK's own (``max_retries``,
  ``retry-after``, ``x-should-retry``); nothing here retries on top. What is left after the SDK gave
  up is sorted for the harness: an overload tries ``fallback_model`` once; a transient failure
  raises :class:`ModelUnavailable` (re-schedule the run after ``retry_after_s``); anything else is
  deterministic and raises :class:`ModelRequestError` (fail the run).
* :func:`route_model` picks a model from an agent's routing table; :func:`input_tokens_bound` is
  the input-token upper bound used for cost reservations.

OpenTelemetry: the SDK emits its own CLIENT span per API call (``anthropic.messages.create``, with
``gen_ai.*`` request/usage attributes and metadata only, no content). It starts as a child of the
current span, so when the harness calls :func:`create_message` inside its ``chat {model}`` span the
SDK span nests under it (one span per call, attempts recorded on it) rather than duplicating it.
``ANTHROPIC_OPEN_TELEMETRY=false`` switches the SDK spans off; :data:`SDK_OPEN_TELEMETRY` is the
hook to pass a different ``open_telemetry=`` option.
"""

from __future__ import annotations

import contextvars
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
from anthropic.types import Message
from django.conf import settings

from agentops.llm.scripted import CONVERSATION_HEADER, DEFAULT_SCENARIO, SCENARIO_HEADER, ScriptedTransport
from agentops.redact import redact

SCRIPTED_BASE_URL = "http://scripted.invalid"
SCRIPTED_API_KEY = "sk-ant-scripted-not-a-real-key"
# When a transient failure carries no retry-after header, the harness waits this long.
DEFAULT_RETRY_AFTER_S = 30.0
# The ``open_telemetry=`` option given to every client: ``None`` lets the SDK read its
# ``ANTHROPIC_OPEN_TELEMETRY*`` environment variables (spans on, metadata only, by default).
SDK_OPEN_TELEMETRY: Any = None

_OVERLOAD_STATUSES = {503, 529}
# A stream cut off mid-way is retried soon: nothing says the API is overloaded.
STREAM_CUT_RETRY_AFTER_S = 1.0

# Receives each streamed piece: {"kind": "start", "model"} when a message starts (a retry or the
# fallback starts again: drop what came before), {"kind": "text", "index", "text"},
# {"kind": "tool_use", "index", "name"}, {"kind": "tool_input", "index", "partial_json"} and
# {"kind": "stop", "index"} when a block is complete ({"kind": "stop", "index": None}: the message).
DeltaSink = Callable[[dict[str, Any]], None]


class ModelUnavailable(Exception):
    """The model could not be reached after the SDK's retries: re-schedule after ``retry_after_s``."""

    def __init__(
        self,
        retry_after_s: float,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        model: str = "",
        attempts: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.retry_after_s = retry_after_s
        self.error_type = error_type
        self.message = message
        self.status = status
        self.model = model
        self.attempts = attempts
        self.request_id = request_id


class ModelRequestError(Exception):
    """The API refused the request for a reason a retry cannot fix (4xx): fail the run."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        model: str = "",
        attempts: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message
        self.model = model
        self.attempts = attempts
        self.request_id = request_id


@dataclass(frozen=True)
class GatewayResult:
    message: Message
    model: str  # the model actually used (the fallback when fell_back)
    latency_ms: float  # wall time of the whole call, SDK retries and fallback included
    attempts: int  # HTTP attempts made, over both models
    fell_back: bool
    request_id: str | None = None


# --------------------------------------------------------------------------- clients


def scripted_mode() -> bool:
    """True when the scripted Messages API is used: a scenario is configured or there is no API key."""
    return bool(settings.AGENTOPS_SCENARIO) or not settings.ANTHROPIC_API_KEY


# Attempts of the current create_message call. The SDK runs middleware inside its retry loop, once
# per HTTP attempt, so counting there sees every retry, including the failed ones.
_attempts: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "agentops_llm_attempts", default=None
)


def _count_attempts(request: Any, call_next: Any) -> Any:
    box = _attempts.get()
    if box is not None:
        box[0] += 1
    return call_next(request)


_clients: dict[tuple[Any, ...], anthropic.Anthropic] = {}
_clients_lock = threading.Lock()


def _build_client(*, scripted: bool, max_retries: int, timeout: float, api_key: str) -> anthropic.Anthropic:
    if scripted:
        return anthropic.Anthropic(
            api_key=SCRIPTED_API_KEY,
            base_url=SCRIPTED_BASE_URL,
            max_retries=max_retries,
            timeout=timeout,
            http_client=httpx2.Client(transport=ScriptedTransport()),
            middleware=[_count_attempts],
            open_telemetry=SDK_OPEN_TELEMETRY,
        )
    return anthropic.Anthropic(
        api_key=api_key,
        max_retries=max_retries,
        timeout=timeout,
        middleware=[_count_attempts],
        open_telemetry=SDK_OPEN_TELEMETRY,
    )


def get_client(*, max_retries: int | None = None) -> anthropic.Anthropic:
    """The process's ``anthropic.Anthropic`` client (cached per mode, key, timeout and ``max_retries``).

    ``max_retries`` defaults to ``settings.ANTHROPIC_MAX_RETRIES``; the timeout is
    ``settings.ANTHROPIC_TIMEOUT_S``. In scripted mode the client talks to
    :class:`~agentops.llm.scripted.ScriptedTransport` at ``http://scripted.invalid`` with a dummy key.
    """
    retries = settings.ANTHROPIC_MAX_RETRIES if max_retries is None else max_retries
    scripted = scripted_mode()
    api_key = "" if scripted else str(settings.ANTHROPIC_API_KEY)
    timeout = float(settings.ANTHROPIC_TIMEOUT_S)
    # The pid keeps a forked worker from reusing its parent's connection pool.
    key = (os.getpid(), scripted, int(retries), timeout, api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _build_client(
                scripted=scripted, max_retries=int(retries), timeout=timeout, api_key=api_key
            )
            _clients[key] = client
    return client


def warm_up() -> None:
    """Build, once per worker process, what a job would otherwise build on its first model call
    (issue 14): the process's client (its connection pool) and the SDK's lazily built request
    transforms and pydantic response models, by one streamed call with a tool through a private
    scripted client. Offline whatever the mode (no request leaves the process); counted in process."""
    get_client()
    warm = anthropic.Anthropic(api_key=SCRIPTED_API_KEY, base_url=SCRIPTED_BASE_URL, max_retries=0, timeout=10.0,
                               http_client=httpx2.Client(transport=ScriptedTransport(redis_url="", default_scenario=DEFAULT_SCENARIO)))
    tool = {"name": "warm_up", "description": "Warms the SDK.", "input_schema": {"type": "object", "properties": {}}}
    try:
        _stream(warm, "claude-haiku-4-5", {"max_tokens": 16, "messages": [{"role": "user", "content": "warm up"}], "tools": [tool]},
                on_delta=None)
    finally:
        warm.close()


def reset_clients() -> None:
    """Forget the cached clients (tests that patch a client in; clients are per process anyway)."""
    with _clients_lock:
        _clients.clear()


# --------------------------------------------------------------------------- calls


def _retry_after(headers: httpx2.Headers | None) -> float | None:
    """``retry-after-ms`` then ``retry-after`` (seconds), the order the SDK reads them."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            continue
    return None


def _error_type(err: anthropic.APIStatusError) -> str:
    return str(err.type or type(err).__name__)


def _error_message(err: anthropic.APIStatusError) -> str:
    # The API's own message, never the whole body (it can quote request content).

    return redact(str(err.api_message or f"HTTP {err.status_code}"))[:500]


def _is_overload(err: BaseException) -> bool:
    return isinstance(err, anthropic.APIStatusError) and (
        err.status_code in _OVERLOAD_STATUSES or err.type == "overloaded_error"
    )


def _translate(err: anthropic.AnthropicError, *, model: str, attempts: int) -> Exception:
    """The gateway exception for an SDK exception raised after its retries."""
    if isinstance(err, anthropic.APITimeoutError):
        return ModelUnavailable(
            DEFAULT_RETRY_AFTER_S, "timeout_error", "The request timed out.", model=model, attempts=attempts
        )
    if isinstance(err, anthropic.APIConnectionError):
        return ModelUnavailable(
            DEFAULT_RETRY_AFTER_S,
            "connection_error",
            "Could not connect to the API.",
            model=model,
            attempts=attempts,
        )
    if isinstance(err, anthropic.APIStatusError) and err.status_code < 400:
        # An ``event: error`` inside a 200 stream (e.g. overloaded mid-way): transient.
        return ModelUnavailable(
            STREAM_CUT_RETRY_AFTER_S,
            _error_type(err),
            _error_message(err),
            status=err.status_code,
            model=model,
            attempts=attempts,
            request_id=err.request_id,
        )
    if isinstance(err, anthropic.APIStatusError):
        status = err.status_code
        if status in (408, 409, 429) or status >= 500:
            retry_after = _retry_after(err.response.headers)
            return ModelUnavailable(
                DEFAULT_RETRY_AFTER_S if retry_after is None else retry_after,
                _error_type(err),
                _error_message(err),
                status=status,
                model=model,
                attempts=attempts,
                request_id=err.request_id,
            )
        return ModelRequestError(
            status,
            _error_type(err),
            _error_message(err),
            model=model,
            attempts=attempts,
            request_id=err.request_id,
        )
    if isinstance(err, anthropic.APIResponseValidationError):
        return ModelRequestError(
            err.status_code,
            "invalid_response",
            "The API response did not match the schema.",
            model=model,
            attempts=attempts,
        )
    # Any other SDK error (credentials, configuration) is not fixed by waiting.
    return ModelRequestError(
        0, type(err).__name__, "The API client could not make the request.", model=model, attempts=attempts
    )


CACHE_TTLS = ("5m", "1h")


def with_cache_breakpoints(
    *, system: str, tools: list[dict[str, Any]], messages: list[dict[str, Any]], ttl: str
) -> tuple[list[dict[str, Any]] | str, list[dict[str, Any]], list[dict[str, Any]]]:
    """``(system, tools, messages)`` with prompt-cache breakpoints, the inputs left untouched.

    Three of the API's four breakpoints: the last tool definition (tools come first in the
    prompt), the system prompt, and a moving one on the last block of the last message, so each
    turn writes the conversation so far and the next turn reads it back. ``ttl`` is ``"5m"``
    (the API's default, sent without ``ttl``) or ``"1h"``.
    """
    mark: dict[str, Any] = {"type": "ephemeral"} if ttl != "1h" else {"type": "ephemeral", "ttl": "1h"}
    cached_tools = [*tools[:-1], {**tools[-1], "cache_control": mark}] if tools else []
    cached_system: list[dict[str, Any]] | str = (
        [{"type": "text", "text": system, "cache_control": mark}] if system else system
    )
    cached_messages = list(messages)
    if cached_messages:
        last = cached_messages[-1]
        content = last.get("content")
        if isinstance(content, str) and content:
            content = [{"type": "text", "text": content}]
        if isinstance(content, list) and content and isinstance(content[-1], dict):
            cached_messages[-1] = {**last, "content": [*content[:-1], {**content[-1], "cache_control": mark}]}
    return cached_system, cached_tools, cached_messages


class StreamCut(Exception):
    """The stream ended before ``message_stop``: the answer is incomplete and must not be used."""


def _stream(
    client: anthropic.Anthropic, model: str, kwargs: dict[str, Any], on_delta: DeltaSink | None
) -> Message:
    """One streamed call: relay the deltas, return the final message (raise when it broke off)."""
    try:
        with client.messages.stream(model=model, **kwargs) as stream:
            for event in stream:
                if on_delta is None:
                    continue
                if event.type == "message_start":
                    on_delta({"kind": "start", "model": event.message.model})
                elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                    on_delta({"kind": "tool_use", "index": event.index, "name": event.content_block.name})
                elif event.type == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        on_delta({"kind": "text", "index": event.index, "text": delta.text})
                    elif delta.type == "input_json_delta" and delta.partial_json:
                        on_delta(
                            {"kind": "tool_input", "index": event.index, "partial_json": delta.partial_json}
                        )
                elif event.type == "content_block_stop":
                    on_delta({"kind": "stop", "index": event.index})
                elif event.type == "message_stop":
                    on_delta({"kind": "stop", "index": None})
            message = stream.get_final_message()
            request_id = getattr(stream, "request_id", None)
    except httpx2.TransportError as err:
        # The connection dropped mid-body (the SDK retries only before the response starts).
        raise StreamCut(f"{type(err).__name__}: the stream was cut off") from err
    except (ValueError, AssertionError) as err:
        # A malformed or truncated SSE body (no message_start, undecodable JSON).
        raise StreamCut(f"{type(err).__name__}: the stream was malformed") from err
    if message.stop_reason is None:
        raise StreamCut("the stream ended before message_stop")
    if request_id and not getattr(message, "_request_id", None):
        message._request_id = request_id
    return message


def create_message(
    *,
    model: str,
    fallback_model: str | None,
    system: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    max_tokens: int,
    scenario: str | None,
    conversation_key: str | None = None,
    max_retries: int | None = None,
    sampling: dict[str, Any] | None = None,
    on_delta: DeltaSink | None = None,
    cache_ttl: str | None = None,
) -> GatewayResult:
    """One streamed model call through the SDK (its retries only), with at most one fallback on overload.

    ``on_delta`` receives the deltas as they arrive (see :data:`DeltaSink`); the returned message
    is the SDK's accumulation of the whole stream, used exactly as a non-streamed one would be. A
    stream cut off mid-way raises :class:`ModelUnavailable` (``stream_interrupted``), never a
    partial message.
    ``cache_ttl`` (``"5m"``/``"1h"``) adds prompt-cache breakpoints (:func:`with_cache_breakpoints`).

    ``scenario`` selects the scripted scenario (else ``settings.AGENTOPS_SCENARIO``, else
    ``default``) and is sent only in scripted mode; with a real API key and no configured scenario,
    it is ignored. ``conversation_key`` (e.g. the run id) keys the scripted API's cross-process
    counters and tool-use ids for this conversation; it is not sent to the real API.

    Raises :class:`ModelUnavailable` (429/408/409/5xx/connection/timeout after the SDK's retries,
    and an overload whose fallback failed too) or :class:`ModelRequestError` (other 4xx, including
    404 for an unknown model). ``sampling`` (temperature, top_p, top_k, stop_sequences) is passed
    to the SDK call as is.
    """
    client = get_client(max_retries=max_retries)
    cached_system: list[dict[str, Any]] | str = system
    if cache_ttl in CACHE_TTLS:
        cached_system, tools, messages = with_cache_breakpoints(
            system=system, tools=tools, messages=messages, ttl=str(cache_ttl)
        )
    kwargs: dict[str, Any] = {**(sampling or {}), "max_tokens": max_tokens, "messages": messages}
    if system:
        kwargs["system"] = cached_system
    if tools:
        kwargs["tools"] = tools
    if scripted_mode():
        headers = {SCENARIO_HEADER: scenario or settings.AGENTOPS_SCENARIO or DEFAULT_SCENARIO}
        if conversation_key:
            headers[CONVERSATION_HEADER] = conversation_key
        kwargs["extra_headers"] = headers

    box = [0]
    token = _attempts.set(box)
    started = time.perf_counter()
    used, fell_back = model, False
    try:
        try:
            message = _stream(client, model, kwargs, on_delta)
        except StreamCut as cut:
            raise ModelUnavailable(
                STREAM_CUT_RETRY_AFTER_S, "stream_interrupted", str(cut), model=model, attempts=box[0]
            ) from cut
        except anthropic.AnthropicError as err:
            if not (_is_overload(err) and fallback_model and fallback_model != model):
                raise _translate(err, model=model, attempts=box[0]) from err
            used, fell_back = fallback_model, True
            try:
                message = _stream(client, fallback_model, kwargs, on_delta)
            except StreamCut as cut:
                raise ModelUnavailable(
                    STREAM_CUT_RETRY_AFTER_S,
                    "stream_interrupted",
                    str(cut),
                    model=fallback_model,
                    attempts=box[0],
                ) from cut
            except anthropic.AnthropicError as fallback_err:
                raise _translate(fallback_err, model=fallback_model, attempts=box[0]) from fallback_err
    finally:
        _attempts.reset(token)
    return GatewayResult(
        message=message,
        model=used,
        latency_ms=(time.perf_counter() - started) * 1000,
        attempts=box[0],
        fell_back=fell_back,
        request_id=getattr(message, "_request_id", None),
    )


# --------------------------------------------------------------------------- routing


def _words(keywords: list[str]) -> re.Pattern[str] | None:
    cleaned = [k.strip() for k in keywords if isinstance(k, str) and k.strip()]
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(k) for k in cleaned) + r")\b", re.IGNORECASE)


def route_model(*, model: str, routing: dict[str, Any], run_input: str) -> str:
    """Pick the model for a run from the agent's routing table.

    ``routing`` (all keys optional; an empty or malformed table means ``model``)::

        {"simple": "claude-haiku-4-5",      # model for simple inputs
         "complex": "claude-opus-4-5",      # model for complex inputs
         "complex_min_chars": 400,          # an input this long or longer is complex
         "complex_keywords": ["refund", "legal"],  # ... as is one with any of these words (case-insensitive)
         "simple_max_chars": 200}           # a non-complex input this short or shorter is simple

    Complex wins over simple. An input that is neither (between the two lengths), or a class whose
    model is not given, runs on ``model``.
    """
    if not isinstance(routing, dict) or not routing:
        return model
    text = run_input or ""

    def as_int(key: str, default: int) -> int:
        value = routing.get(key, default)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default

    complex_min = as_int("complex_min_chars", 400)
    simple_max = as_int("simple_max_chars", 200)
    keywords = routing.get("complex_keywords") or []
    pattern = _words(keywords) if isinstance(keywords, list) else None
    is_complex = len(text) >= complex_min or (pattern is not None and pattern.search(text) is not None)
    target = (
        routing.get("complex") if is_complex else routing.get("simple") if len(text) <= simple_max else None
    )
    return target if isinstance(target, str) and target else model


def validate_routing(routing: Any) -> list[str]:
    """Problems with a routing table, for the agent editor (empty list: valid)."""
    if routing in (None, {}):
        return []
    if not isinstance(routing, dict):
        return ["routing must be an object"]
    errors = []
    allowed = {"simple", "complex", "complex_min_chars", "complex_keywords", "simple_max_chars"}
    errors += [f"unknown key: {k}" for k in sorted(set(routing) - allowed)]
    for key in ("simple", "complex"):
        if key in routing and not (isinstance(routing[key], str) and routing[key]):
            errors.append(f"{key} must be a model id")
    for key in ("complex_min_chars", "simple_max_chars"):
        value = routing.get(key)
        if key in routing and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            errors.append(f"{key} must be a non-negative integer")
    keywords = routing.get("complex_keywords")
    if keywords is not None and not (
        isinstance(keywords, list) and all(isinstance(k, str) for k in keywords)
    ):
        errors.append("complex_keywords must be a list of strings")
    return errors


# --------------------------------------------------------------------------- token bound

# Per-request and per-message framing the API adds, and the tool-use system prompt Anthropic
# documents (a few hundred tokens whenever tools are given), rounded up.
_BASE_OVERHEAD_TOKENS = 32
_PER_MESSAGE_TOKENS = 8
_TOOLS_OVERHEAD_TOKENS = 600


def input_tokens_bound(*, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """A cheap, conservative upper bound on the request's input tokens, for cost reservation.

    ``ceil(UTF-8 bytes of the compact JSON of system+messages+tools / 3)`` plus framing overhead.
    Claude's tokenizers average well over 3 bytes per token on English prose and JSON (about 3.5–4.5),
    and every JSON punctuation, quote and key counted here costs bytes that the API's own framing
    does not, so on such content this bounds ``usage.input_tokens + cache_creation_input_tokens +
    cache_read_input_tokens``. Base64 images count far above their real token cost (still a bound).
    It is a bound for typical text, not a proof for every string: adversarial inputs built to
    tokenize badly (e.g. long runs of rare symbols) can exceed 1 token per 3 bytes, which is why the
    reservation is reconciled against the reported usage after each call. It covers what is sent
    as system, messages and tools only: a structured-output schema (``output_config``) or other
    request fields add hidden prompt tokens it does not count (checked against every recorded
    request/response pair in shared/reference; the one with ``output_config`` counted 406 tokens
    for an 85-token bound).
    """
    payload = {"system": system or "", "messages": messages or [], "tools": tools or []}
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    overhead = _BASE_OVERHEAD_TOKENS + _PER_MESSAGE_TOKENS * len(messages or [])
    if tools:
        overhead += _TOOLS_OVERHEAD_TOKENS
    return math.ceil(size / 3) + overhead
