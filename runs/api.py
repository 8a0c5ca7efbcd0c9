"""The runs API: submit, list, read, cancel, pause, resume, read the message log, and follow a run
as Server-Sent Events — a django-ninja router (mounted by agentops/api.py).

Every operation takes a key with the ``runs`` scope (tenants.api.ApiKeyAuth). Objects are always
looked up within the key's tenant: another tenant's run is a 404.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import Header, Query, Router
from ninja.responses import Status
from pydantic import Field, StringConstraints

from agentops.harness.evaluators import all_flags
from runs import live, selectors, services
from runs.models import Agent, RunStatus
from runs.models import Run as RunRow
from tenants.api import (
    ApiError,
    ApiKeyAuth,
    AsyncApiKeyAuth,
    Money,
    QueryDateTime,
    QueryInt,
    RequestBody,
    ResponseBody,
    api_key,
    db_call,
)

LIST_MAX_LIMIT = 100
MESSAGES_MAX_LIMIT = 500

router = Router(tags=["runs"], auth=ApiKeyAuth("runs"))


class RunSubmit(RequestBody):
    agent: Annotated[str, StringConstraints(min_length=1, max_length=100)] | int = Field(description="The agent's name or id.")
    input: str = Field("", description="The first user message (leave empty when giving variables).")
    variables: dict[str, str] | None = Field(
        None, description="Values for the first-message template of the agent's prompt version (every declared variable, no other); "
        "the rendered template becomes the input and the version is pinned at submission.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Yours, under 4 KB; shown redacted.")


class NoBody(RequestBody):
    """Nothing to say: an empty object, or no body at all."""


_NO_BODY = NoBody()


class RunError(ResponseBody):
    type: str
    message: str


class Run(ResponseBody):
    id: int
    agent: str
    status: RunStatus
    outcome: str | None
    error: RunError | None
    result: str | None
    model: str | None
    iterations: int
    cost_usd: Money
    input_tokens: int
    output_tokens: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    metadata: dict[str, Any]
    flags: list[str] = Field(description="Online evaluator flags any turn of the run raised.")


class RunPage(ResponseBody):
    data: list[Run]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class Message(ResponseBody):
    seq: int
    role: Literal["user", "assistant"]
    content: list[Any] | str = Field(description="Content blocks as sent or received, redacted.")
    model: str | None
    stop_reason: str | None
    usage: dict[str, Any] | None
    created_at: datetime
    flags: list[str] = Field(description="Online evaluator flags of this turn.")
    scores: dict[str, float] = Field(description="Online evaluator scores of this turn (0..1), those above 0.")


class MessagePage(ResponseBody):
    data: list[Message]
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last.")


def _run_or_404(request: HttpRequest, run_id: str) -> RunRow:
    try:
        return selectors.run_get(tenant=api_key(request).tenant, run_id=run_id)
    except RunRow.DoesNotExist:
        raise ApiError(404, "not_found", "No such run.")


@router.get("/runs", url_name="api_runs", response=RunPage)
def runs_list(
    request: HttpRequest,
    status: str | None = Query(None, description=f"One status or several, comma-separated: {', '.join(RunStatus.values)}."),
    agent: str | None = Query(None, min_length=1, max_length=100, description="The agent's name."),
    flag: str | None = Query(None, max_length=40, description=f"Only runs carrying this online evaluator flag: {', '.join(all_flags())}."),
    created_after: QueryDateTime | None = Query(None, description="Inclusive; ISO 8601, UTC when no offset."),
    created_before: QueryDateTime | None = Query(None, description="Exclusive; ISO 8601, UTC when no offset."),
    limit: QueryInt = Query(50, ge=1, le=LIST_MAX_LIMIT),
    cursor: str | None = Query(None, description="The next_cursor of the previous page."),
) -> dict[str, Any]:
    """The tenant's runs, newest first, filtered, in keyset pages (cursor on created_at, id)."""
    statuses: tuple[str, ...] = ()
    if status is not None:
        statuses = tuple(status.split(","))
        if not set(statuses) <= set(RunStatus.values):
            raise ApiError(400, "invalid_request", f"status must be among {', '.join(RunStatus.values)}.")
    if flag is not None and flag not in all_flags():
        raise ApiError(400, "invalid_request", f"flag must be one of {', '.join(all_flags())}.")
    filters = selectors.RunFilters(statuses=statuses, agent=agent, flag=flag, created_after=created_after, created_before=created_before)
    try:
        rows, next_cursor = selectors.runs_page(tenant=api_key(request).tenant, filters=filters, limit=limit, cursor=cursor)
    except selectors.CursorError as exc:
        raise ApiError(400, "invalid_request", str(exc))
    return {"data": [selectors.run_as_dict(r) for r in rows], "next_cursor": next_cursor}


@router.post("/runs", url_name="api_runs", response={201: Run}, auth=ApiKeyAuth("runs", max_body_bytes=200 * 1024))
def runs_submit(request: HttpRequest, body: RunSubmit, response: HttpResponse) -> dict[str, Any]:
    """Submit a run; it is queued and a worker picks it up."""
    key = api_key(request)
    if len(json.dumps(body.metadata)) > 4096:
        raise ApiError(400, "invalid_request", "'metadata' must be an object under 4 KB.")
    try:
        agent = selectors.agent_by_ref(tenant=key.tenant, ref=body.agent)
    except Agent.DoesNotExist:
        raise ApiError(404, "not_found", "No such agent in this tenant.")
    try:
        run = services.run_submit(
            tenant=key.tenant, agent=agent, input=body.input, api_key=key,
            submitted_by=key.created_by, role=key.acts_as_role, metadata=body.metadata, variables=body.variables,
        )
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", " ".join(exc.messages))
    except services.RunRefused as exc:
        raise ApiError(409 if exc.type == "kill_switch" else 429, exc.type, str(exc))
    response["Location"] = f"/api/v1/runs/{run.pk}"
    return selectors.run_as_dict(run)


@router.get("/runs/{run_id}", url_name="api_runs_detail", response=Run)
def runs_detail(request: HttpRequest, run_id: str) -> dict[str, Any]:
    """One run: status, outcome, result, model, iterations, exact cost, tokens, timestamps."""
    return selectors.run_as_dict(_run_or_404(request, run_id))


@router.post("/runs/{run_id}/cancel", url_name="api_runs_cancel", response={200: Run, 202: Run})
def runs_cancel(request: HttpRequest, run_id: str, body: NoBody = _NO_BODY) -> Status[dict[str, Any]]:
    """Cancel: at once (200) when no worker holds the run, else before its next model call (202)."""
    run = services.run_cancel(run=_run_or_404(request, run_id), actor_key=api_key(request))
    return Status(202 if not run.is_terminal else 200, selectors.run_as_dict(run))


@router.post("/runs/{run_id}/pause", url_name="api_runs_pause", response={202: Run})
def runs_pause(request: HttpRequest, run_id: str, body: NoBody = _NO_BODY) -> Status[dict[str, Any]]:
    """Pause takes effect before the run's next model call; resume continues from the log."""
    run = services.run_pause(run=_run_or_404(request, run_id), actor=api_key(request).created_by)
    return Status(202, selectors.run_as_dict(run))


@router.post("/runs/{run_id}/resume", url_name="api_runs_resume", response={202: Run})
def runs_resume(request: HttpRequest, run_id: str, body: NoBody = _NO_BODY) -> Status[dict[str, Any]]:
    """Resume a paused run from its last persisted turn (409 when it is not resumable)."""
    run = _run_or_404(request, run_id)
    try:
        run = services.run_resume(run=run, actor=api_key(request).created_by, reason="api")
    except ValidationError as exc:
        raise ApiError(409, "invalid_state", " ".join(exc.messages))
    except services.RunRefused as exc:
        raise ApiError(409, exc.type, str(exc))
    return Status(202, selectors.run_as_dict(run))


_EVENT_STREAM = {200: {"description": "The run's events as Server-Sent Events (id, event, data: JSON), then `event: end`.",
                       "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/runs/{run_id}/events", url_name="api_runs_events", auth=AsyncApiKeyAuth("runs"),
            openapi_extra={"responses": _EVENT_STREAM})
async def runs_events(
    request: HttpRequest,
    run_id: str,
    after: QueryInt | None = Query(None, ge=0, description="Resume after this event id (or send Last-Event-ID)."),
    follow: Literal["0", "1"] = Query("1", description="0: send what is there and end."),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=64,
                                       description="The id of the last frame received (`P` or `P:R`)."),
) -> StreamingHttpResponse:
    """SSE: every RunEvent after ``Last-Event-ID`` (or ``?after=``), until the run ends, and the
    model's output as it streams (``text_delta``, ``input_json_delta``, ...; see runs/live.py).

    Async, so that under the ASGI server (``agentops.asgi``, the Procfile's ``events``) an open
    stream is a coroutine sleeping between polls, not a thread; its queries share a few database
    threads (:func:`tenants.api.db_call`). Under WSGI the same view streams from a plain generator.
    """
    run = await db_call(request, _run_or_404, request, run_id)
    try:
        start, delta = live.parse_cursor(last_event_id, after)
    except live.BadCursor as exc:
        raise ApiError(400, "invalid_request", str(exc))
    cursor = await db_call(request, live.start_cursor, run, start, delta)
    stream: Iterator[str] | AsyncIterator[str]
    if isinstance(request, ASGIRequest):
        stream = live.event_stream_async(request, run, cursor, follow == "1")
    else:
        stream = live.event_stream(run, cursor, follow == "1")
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@router.get("/runs/{run_id}/messages", url_name="api_runs_messages", response=MessagePage)
def runs_messages(
    request: HttpRequest,
    run_id: str,
    after: QueryInt = Query(0, ge=0, le=2**31 - 1, description="Start after this seq."),
    limit: QueryInt = Query(100, ge=1, le=MESSAGES_MAX_LIMIT),
) -> dict[str, Any]:
    """The durable message log in order, redacted like every other API output."""
    messages = selectors.messages_after(run=_run_or_404(request, run_id), after_seq=after, limit=limit + 1)
    more = len(messages) > limit
    messages = messages[:limit]
    return {"data": [selectors.message_as_dict(m) for m in messages], "next_after": messages[-1].seq if more else None}
