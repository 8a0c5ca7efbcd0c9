"""The runs API: submit, read, cancel, and follow a run as Server-Sent Events.

All views go through tenants.api.api_view (Bearer tenant API key, scope, rate limit, JSON
errors). Objects are always looked up within the key's tenant: another tenant's run is a 404.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from agentops.redact import redact_obj
from runs import selectors, services
from runs.models import TERMINAL_STATUSES, Agent, Run
from tenants.api import EMPTY_BODY, ApiContext, ApiError, api_view, db_call

SSE_MAX_SECONDS = 300
SSE_POLL_SECONDS = 0.25


def _run_or_404(api: ApiContext, run_id: str) -> Run:
    try:
        return selectors.run_get(tenant=api.tenant, run_id=run_id)
    except Run.DoesNotExist:
        raise ApiError(404, "not_found", "No such run.")


RUN_SUBMIT_BODY = {
    "type": "object",
    "properties": {
        "agent": {"type": ["string", "integer"], "minLength": 1, "maxLength": 100},
        "input": {"type": "string"},
        "metadata": {"type": "object"},
    },
    "required": ["agent", "input"],
    "additionalProperties": False,
}


@api_view(scope="runs", methods=("POST",), body=RUN_SUBMIT_BODY, max_body_bytes=200 * 1024)
def runs_create(request: HttpRequest, api: ApiContext) -> HttpResponse:
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


@api_view(scope="runs")
def runs_detail(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    return JsonResponse(selectors.run_as_dict(_run_or_404(api, run_id)))


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY)
def runs_cancel(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    run = services.run_cancel(run=_run_or_404(api, run_id), actor_key=api.key)
    return JsonResponse(selectors.run_as_dict(run), status=202 if not run.is_terminal else 200)


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY)
def runs_pause(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    """Pause takes effect before the run's next model call; resume continues from the log."""
    run = services.run_pause(run=_run_or_404(api, run_id), actor=api.key.created_by)
    return JsonResponse(selectors.run_as_dict(run), status=202)


@api_view(scope="runs", methods=("POST",), body=EMPTY_BODY)
def runs_resume(request: HttpRequest, api: ApiContext, run_id: str) -> HttpResponse:
    run = _run_or_404(api, run_id)
    try:
        run = services.run_resume(run=run, actor=api.key.created_by, reason="api")
    except ValidationError as exc:
        raise ApiError(409, "invalid_state", " ".join(exc.messages))
    except services.RunRefused as exc:
        raise ApiError(409, exc.type, str(exc))
    return JsonResponse(selectors.run_as_dict(run), status=202)


@api_view(scope="runs")
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
