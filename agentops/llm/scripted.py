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
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import redis
from django.conf import settings

from agentops.llm.replies import (
    ScriptedReply,
    build_message,
    build_sse_events,
    check_sampling,
    check_tool_pairs,
    compact_json,
    conversation_fingerprint,
    error_reply,
    estimate_input_tokens,
    invalid_request,
    new_request_id,
    step_of,
)
from agentops.llm.scenario import ErrorSpec, ScenarioError, is_known_model, load_scenario

log = logging.getLogger(__name__)

SCENARIO_HEADER = "x-agentops-scenario"
# Optional: a stable key for the conversation (the harness sends the run id). Without it the
# fingerprint is a hash of the system prompt and the first user message.
CONVERSATION_HEADER = "x-agentops-conversation"
DEFAULT_SCENARIO = "default"
COUNTER_TTL_S = 3600


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
            return invalid_request("There was an error parsing the body of your request as JSON.")
        if not isinstance(data, dict):
            return invalid_request("The request body must be a JSON object.")
        name = headers.get(SCENARIO_HEADER) or self._default_scenario or _default_scenario()
        try:
            scenario = load_scenario(name)
        except ScenarioError as exc:
            return invalid_request(str(exc))

        model = data.get("model")
        if not isinstance(model, str) or not model:
            return invalid_request("model: Field required")
        if not is_known_model(model, scenario):
            return error_reply(ErrorSpec(status=404, type="not_found_error", message=f"model: {model}"))
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return invalid_request("messages: at least one message is required")
        if path.endswith("/count_tokens"):
            return ScriptedReply(
                200,
                {"content-type": "application/json", "request-id": new_request_id()},
                compact_json({"input_tokens": estimate_input_tokens(data)}),
            )
        if not isinstance(data.get("max_tokens"), int) or data["max_tokens"] < 1:
            return invalid_request("max_tokens: Field required (an integer >= 1)")
        sampling = check_sampling(data)
        if sampling:
            return invalid_request(sampling)
        pairing = check_tool_pairs(messages)
        if pairing:
            return invalid_request(pairing)

        step_index = step_of(messages)
        step = scenario.step_for(step_index, data)
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

        request_id = new_request_id()
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
            payload = compact_json(build_message(scenario, step_index, data, conversation))
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
