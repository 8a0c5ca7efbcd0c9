"""The runs API: submit, list, read, cancel, read the message log, and follow a run as Server-Sent Events.

All views go through tenants.api.api_view (Bearer tenant API key, scope, rate limit, JSON
errors). Objects are always looked up within the key's tenant: another tenant's run is a 404.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from agentops.harness.evaluators import all_flags
from agentops.redact import redact_obj
from runs import selectors, services
from runs.models import TERMINAL_STATUSES, Agent, Run, RunStatus
from tenants.api import EMPTY_BODY, ApiContext, ApiError, api_view, db_call

SSE_MAX_SECONDS = 300
SSE_POLL_SECONDS = 0.25


def _run_or_404(api: ApiContext, run_id: str) -> Run:
    try:
        return selectors.run_get(tenant=api.tenant, run_id=run_id)
    except Run.DoesNotExist:
        raise ApiError(404, "not_found", "No such run.")


RUN_SUBMIT_BODY = {
    "title": "RunSubmit",
    "type": "object",
    "properties": {
        "agent": {"type": ["string", "integer"], "minLength": 1, "maxLength": 100},
        "input": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["agent", "input"],
    "additionalProperties": False,
}


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
RUN_SCHEMA = {
    "title": "Run",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "agent": {"type": "string"},
        "status": {"enum": list(RunStatus.values)},
        "outcome": {"type": ["string", "null"]},
        "error": {
            "oneOf": [
                {"type": "null"},
                {"type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                 "required": ["type", "message"], "additionalProperties": False},
            ],
        },
        "result": {"type": ["string", "null"]},
        "model": {"type": ["string", "null"]},
        "iterations": {"type": "integer"},
        "cost_usd": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": "Exact decimal."},
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": _NULLABLE_TIME,
        "finished_at": _NULLABLE_TIME,
        "metadata": {"type": "object"},
        "flags": {"type": "array", "items": {"type": "string"}, "description": "Online evaluator flags any turn raised."},
    },
    "required": ["id", "agent", "status", "outcome", "error", "result", "model", "iterations", "cost_usd",
                 "input_tokens", "output_tokens", "created_at", "started_at", "finished_at", "metadata", "flags"],
    "additionalProperties": False,
}
RUN_LIST_SCHEMA = {
    "title": "RunPage",
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": RUN_SCHEMA},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last."},
    },
    "required": ["data", "next_cursor"],
    "additionalProperties": False,
}
MESSAGE_SCHEMA = {
    "title": "Message",
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "role": {"enum": ["user", "assistant"]},
        "content": {"type": ["array", "string"], "description": "Content blocks as sent or received, redacted."},
        "model": {"type": ["string", "null"]},
        "stop_reason": {"type": ["string", "null"]},
        "usage": {"type": ["object", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "flags": {"type": "array", "items": {"type": "string"}, "description": "Online evaluator flags of this turn."},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}, "description": "Evaluator scores (0..1) above 0."},
    },
    "required": ["seq", "role", "content", "model", "stop_reason", "usage", "created_at", "flags", "scores"],
    "additionalProperties": False,
}
MESSAGE_LIST_SCHEMA = {
    "title": "MessagePage",
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": MESSAGE_SCHEMA},
        "next_after": {"type": ["integer", "null"], "description": "Pass as ?after= for the next page; null on the last."},
    },
    "required": ["data", "next_after"],
    "additionalProperties": False,
}
LIST_MAX_LIMIT = 100
MESSAGES_MAX_LIMIT = 500
RUNS_LIST_QUERY: dict[str, dict[str, Any]] = {
    "status": {"type": "string", "description": f"One status or several, comma-separated: {', '.join(RunStatus.values)}."},
    "agent": {"type": "string", "maxLength": 100, "description": "The agent's name."},
    "flag": {"type": "string", "enum": all_flags(), "description": "Only runs with this online evaluator flag."},
    "created_after": {"type": "string", "format": "date-time", "description": "Inclusive; ISO 8601, UTC when no offset."},
    "created_before": {"type": "string", "format": "date-time", "description": "Exclusive; ISO 8601, UTC when no offset."},
    "limit": {"type": "integer", "minimum": 1, "maximum": LIST_MAX_LIMIT, "default": 50},
    "cursor": {"type": "string", "description": "The next_cursor of the previous page."},
}


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_request", f"{name} must be an integer from {low} to {high}.")
    return int(raw)


def _run_filters(request: HttpRequest) -> selectors.RunFilters:
    statuses: tuple[str, ...] = ()
    if "status" in request.GET:
        statuses = tuple(request.GET["status"].split(","))
        if not set(statuses) <= set(RunStatus.values):
            raise ApiError(400, "invalid_request", f"status must be among {', '.join(RunStatus.values)}.")
    agent = request.GET.get("agent")
    if agent is not None and not 0 < len(agent) <= 100:
        raise ApiError(400, "invalid_request", "agent must be an agent's name (1 to 100 characters).")
    times = {}
    for name in ("created_after", "created_before"):
        if name in request.GET:
            try:
                times[name] = selectors.parse_datetime_param(name, request.GET[name])
            except ValueError as exc:
                raise ApiError(400, "invalid_request", str(exc))
    flag = request.GET.get("flag")
    if flag is not None and flag not in all_flags():
        raise ApiError(400, "invalid_request", f"flag must be one of {', '.join(all_flags())}.")
    return selectors.RunFilters(statuses=statuses, agent=agent, flag=flag, **times)


@api_view(
    scope="runs", methods=("GET", "POST"), body=RUN_SUBMIT_BODY, max_body_bytes=200 * 1024, query=RUNS_LIST_QUERY,
    response={"GET 200": RUN_LIST_SCHEMA, "POST 201": RUN_SCHEMA},
)
def runs_collection(request: HttpRequest, api: ApiContext) -> HttpResponse:
    """GET: The tenant's runs, newest first, filtered, in keyset pages (cursor on created_at, id).
    POST: Submit a run; it is queued and a worker picks it up."""
    if request.method == "POST":
        return _runs_create(api)
    filters = _run_filters(request)
    limit = _int_param(request, "limit", 50, 1, LIST_MAX_LIMIT)
    try:
        rows, next_cursor = selectors.runs_page(tenant=api.tenant, filters=filters, limit=limit, cursor=request.GET.get("cursor"))
    except selectors.CursorError as exc:
        raise ApiError(400, "invalid_request", str(exc))
    return JsonResponse({"data": [selectors.run_as_dict(r) for r in rows], "next_cursor": next_cursor})


def _runs_create(api: ApiContext) -> HttpResponse:
    body = api.body
    metadata = body.get("metadata", {})
    if len(json.dumps(metadata)) > 4096:
        raise ApiError(400, "invalid_request", "'metadata' must be an object under 4 KB.")
    try:
        agent = selectors.agent_by_ref(tenant=api.tenant, ref=body["agent"])
    except Agent.DoesNotExist:
        raise ApiError(404, "not_found", "No such agent in this tenant.")
    try:
        run = services.run_submit(
            tenant=api.tenant, agent=agent, input=body["input"], api_key=api.key,
            submitted_by=api.key.created_by, role=api.key.acts_as_role, metadata=metadata,
        )
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    except services.RunRefused as exc:
        raise ApiError(409 if exc.type == "kill_switch" else 429, exc.type, str(exc))
    resp = JsonResponse(selectors.run_as_dict(run), status=201)
    resp["Location"] = f"/api/v1/runs/{run.pk}"
    return resp


@api_view(scope="runs", response={"GET 200": RUN_SCHEMA})
def runs_detail(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """One run: status, outcome, result, model, iterations, exact cost, tokens, timestamps."""
    return JsonResponse(selectors.run_as_dict(_run_or_404(api, run_id)))


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY, response={"POST 200": RUN_SCHEMA, "POST 202": RUN_SCHEMA})
def runs_cancel(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """Cancel: at once (200) when no worker holds the run, else before its next model call (202)."""
    run = services.run_cancel(run=_run_or_404(api, run_id), actor_key=api.key)
    return JsonResponse(selectors.run_as_dict(run), status=202 if not run.is_terminal else 200)


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY, response={"POST 200": RUN_SCHEMA, "POST 202": RUN_SCHEMA})
def runs_pause(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """Pause takes effect before the run's next model call; resume continues from the log."""
    run = services.run_pause(run=_run_or_404(api, run_id), actor=api.key.created_by)
    return JsonResponse(selectors.run_as_dict(run), status=202)


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY, response={"POST 200": RUN_SCHEMA, "POST 202": RUN_SCHEMA})
def runs_resume(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """Resume a paused run from its last persisted turn (409 when it is not resumable)."""
    run = _run_or_404(api, run_id)
    try:
        run = services.run_resume(run=run, actor=api.key.created_by, reason="api")
    except ValidationError as exc:
        raise ApiError(409, "invalid_state", " ".join(exc.messages))
    except services.RunRefused as exc:
        raise ApiError(409, exc.type, str(exc))
    return JsonResponse(selectors.run_as_dict(run), status=202)


@api_view(
    scope="runs",
    query={"after": {"type": "integer", "minimum": 0, "description": "Resume after this event id (or send Last-Event-ID)."},
           "follow": {"enum": ["0", "1"], "default": "1", "description": "0: send what is there and end."}},
    response={"GET 200": {"type": "string", "contentMediaType": "text/event-stream"}},
)
async def runs_events(request: HttpRequest, api: ApiContext, run_id: str) -> StreamingHttpResponse:
    """SSE: every RunEvent after ``Last-Event-ID`` (or ``?after=``), until the run ends.

    Async, so that under the ASGI server (``agentops.asgi``, the Procfile's ``events``) an open
    stream is a coroutine sleeping between polls, not a thread; its queries share a few database
    threads (:func:`tenants.api.db_call`). Under WSGI the same view streams from a plain generator.
    """
    run = await db_call(request, _run_or_404, api, run_id)
    raw = request.headers.get("Last-Event-ID") or request.GET.get("after") or "0"
    try:
        after = max(0, int(raw))
    except ValueError:
        raise ApiError(400, "invalid_request", "Last-Event-ID must be an integer.")
    follow = request.GET.get("follow", "1") != "0"
    stream: Iterator[str] | AsyncIterator[str]
    if isinstance(request, ASGIRequest):
        stream = _event_stream_async(request, run, after, follow)
    else:
        stream = _event_stream(run, after, follow)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@api_view(
    scope="runs", response={"GET 200": MESSAGE_LIST_SCHEMA},
    query={"after": {"type": "integer", "minimum": 0, "default": 0, "description": "Start after this seq."},
           "limit": {"type": "integer", "minimum": 1, "maximum": MESSAGES_MAX_LIMIT, "default": 100}},
)
def runs_messages(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """The durable message log in order, redacted like every other API output."""
    after = _int_param(request, "after", 0, 0, 2**31 - 1)
    limit = _int_param(request, "limit", 100, 1, MESSAGES_MAX_LIMIT)
    messages = selectors.messages_after(run=_run_or_404(api, run_id), after_seq=after, limit=limit + 1)
    more = len(messages) > limit
    messages = messages[:limit]
    return JsonResponse({"data": [selectors.message_as_dict(m) for m in messages],
                         "next_after": messages[-1].seq if more else None})


def _poll(run: Run, after: int) -> tuple[list[str], int, str | None]:
    """The SSE frames of the events after ``after``, the new cursor, and the run's status."""
    frames = []
    for event in selectors.events_after(run=run, after_id=after):
        after = event.pk
        payload = json.dumps({"type": event.type, "at": event.at.isoformat(), **redact_obj(event.data)})
        frames.append(f"id: {event.pk}\nevent: {event.type}\ndata: {payload}\n\n")
    status = None if frames else Run.unscoped.filter(pk=run.pk).values_list("status", flat=True).first()
    return frames, after, status


def _event_stream(run: Run, after: int, follow: bool) -> Iterator[str]:
    deadline = time.monotonic() + SSE_MAX_SECONDS
    # Django closes the DB connection when the streamed response closes (request_finished).
    yield "retry: 2000\n\n"
    while True:
        frames, after, status = _poll(run, after)
        if frames:
            yield from frames
            continue
        if not follow or status in TERMINAL_STATUSES or time.monotonic() > deadline:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        yield ": keep-alive\n\n"
        time.sleep(SSE_POLL_SECONDS)


async def _event_stream_async(request: HttpRequest, run: Run, after: int, follow: bool) -> AsyncIterator[str]:
    deadline = time.monotonic() + SSE_MAX_SECONDS
    yield "retry: 2000\n\n"
    while True:
        frames, after, status = await db_call(request, _poll, run, after)
        if frames:
            for frame in frames:
                yield frame
            continue
        if not follow or status in TERMINAL_STATUSES or time.monotonic() > deadline:
            yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
            return
        yield ": keep-alive\n\n"
        await asyncio.sleep(SSE_POLL_SECONDS)
