"""A run's event stream as Server-Sent Events: the durable RunEvents and the live model deltas.

Frames: every RunEvent (``id: <event pk>``, ``event: <type>``) and, while a model call streams,
``text_delta`` / ``input_json_delta`` / ``tool_use_start`` / ``stream_start`` frames read from the
run's Redis delta stream (:mod:`agentops.harness.deltas`). Once a frame carried a delta, ids are
``<event pk>:<delta id>`` — both cursors — so ``Last-Event-ID`` resumes both: nothing missed,
nothing repeated. The deltas of a turn already sent as a ``turn`` event are not sent (the turn
holds the whole text); a ``stream_start`` for a turn means "start this turn's text again" (the
call was retried). Delta text is redacted before it is written (:class:`agentops.harness.deltas.DeltaRelay`
holds back a secret split across deltas) and again piece by piece here.

One core, :func:`_frames`, decides what to send; :func:`event_stream` (WSGI, threads) and
:func:`event_stream_async` (ASGI, coroutines) only carry out its database and Redis requests.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncGenerator, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from agentops.harness import deltas
from agentops.redact import redact, redact_obj
from runs import selectors
from runs.models import TERMINAL_STATUSES, RunEvent
from runs.models import Run as RunRow
from tenants.api import db_call

SSE_MAX_SECONDS = 300
SSE_POLL_SECONDS = 0.25
CURSOR_RE = re.compile(r"^(\d{1,18})(?::(\d{1,20}-\d{1,20}))?$")
_DELTA_EVENTS = {
    "text": "text_delta",
    "tool_input": "input_json_delta",
    "tool_use": "tool_use_start",
    "start": "stream_start",
}


class BadCursor(ValueError):
    pass


def parse_cursor(raw: str | None, after: int | None) -> tuple[int, str]:
    """(event pk, delta stream id) from ``Last-Event-ID`` (``P`` or ``P:R``), else ``?after=``."""
    if raw is None or raw == "":
        return after or 0, "0"
    match = CURSOR_RE.match(raw.strip())
    if not match:
        raise BadCursor("Last-Event-ID must be an event id as sent (digits, optionally ':' and a delta id).")
    return int(match.group(1)), match.group(2) or "0"


@dataclass
class Cursor:
    after: int  # last RunEvent pk sent
    delta: str  # last delta stream id sent ("0": none)
    done_seq: int  # highest assistant turn seq sent as a `turn` event: its deltas are stale

    def frame_id(self) -> str:
        return str(self.after) if self.delta == "0" else f"{self.after}:{self.delta}"


def start_cursor(run: RunRow, after: int, delta: str) -> Cursor:
    last_turn = (
        RunEvent.objects.for_tenant(run.tenant_id)
        .filter(run=run, type="turn", pk__lte=after)
        .order_by("-pk")
        .values_list("data", flat=True)
        .first()
    )
    return Cursor(after, delta, _turn_seq(last_turn) if last_turn else 0)


def _turn_seq(data: Any) -> int:
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) else 0


def poll(run: RunRow, cur: Cursor) -> tuple[list[str], str | None]:
    """The SSE frames of the events after the cursor (advancing it), and the run's status."""
    frames = []
    for event in selectors.events_after(run=run, after_id=cur.after):
        cur.after = event.pk
        if event.type == "turn" and (event.data or {}).get("role") == "assistant":
            cur.done_seq = max(cur.done_seq, _turn_seq(event.data))
        payload = json.dumps({"type": event.type, "at": event.at.isoformat(), **redact_obj(event.data)})
        frames.append(f"id: {cur.frame_id()}\nevent: {event.type}\ndata: {payload}\n\n")
    status = None if frames else RunRow.unscoped.filter(pk=run.pk).values_list("status", flat=True).first()
    return frames, status


def delta_frames(cur: Cursor, entries: list[tuple[str, dict[str, Any]]]) -> list[str]:
    frames = []
    for entry_id, data in entries:
        cur.delta = entry_id
        kind = _DELTA_EVENTS.get(str(data.get("kind")))
        if kind is None or not isinstance(data.get("seq"), int) or data["seq"] <= cur.done_seq:
            continue
        body = {k: v for k, v in data.items() if k != "kind"}
        if isinstance(body.get("text"), str):
            body["text"] = redact(body["text"])
        if isinstance(body.get("partial_json"), str):
            body["partial_json"] = redact(body["partial_json"])
        frames.append(f"id: {cur.frame_id()}\nevent: {kind}\ndata: {json.dumps({'type': kind, **body})}\n\n")
    return frames


def _end(status: str | None) -> str:
    return f"event: end\ndata: {json.dumps({'status': status})}\n\n"


@dataclass(frozen=True)
class _Poll:
    """Ask the driver for :func:`poll` (frames, status)."""


@dataclass(frozen=True)
class _Read:
    """Ask the driver for the deltas after the cursor, waiting up to ``block_ms`` (``None``: not at
    all); the answer is ``None`` when Redis did not answer."""

    block_ms: int | None


@dataclass(frozen=True)
class _Sleep:
    """Ask the driver to wait ``SSE_POLL_SECONDS`` (Redis is down: poll the database only)."""


_Step = str | _Poll | _Read | _Sleep


def _frames(cur: Cursor, follow: bool) -> Generator[_Step, Any, None]:
    """The stream's logic, free of I/O: yields frames (``str``) to send and requests for the
    driver, which sends back the answer. Between database polls it waits on the delta stream
    (XREAD BLOCK), so a delta goes out as soon as the worker writes it, not at the next poll."""
    deadline = time.monotonic() + SSE_MAX_SECONDS
    yield "retry: 2000\n\n"
    while True:
        frames, status = yield _Poll()
        yield from frames
        entries = yield _Read(None if frames or not follow else int(SSE_POLL_SECONDS * 1000))
        live = delta_frames(cur, entries or [])
        yield from live
        if frames or live:
            continue
        if not follow or status in TERMINAL_STATUSES or time.monotonic() > deadline:
            yield _end(status)
            return
        yield ": keep-alive\n\n"
        if entries is None:
            yield _Sleep()


def event_stream(run: RunRow, cur: Cursor, follow: bool) -> Iterator[str]:
    """The WSGI driver of :func:`_frames`: a thread that blocks on the database and Redis."""
    # Django closes the DB connection when the streamed response closes (request_finished).
    core = _frames(cur, follow)
    answer: object = None
    while (step := _next(core, answer)) is not None:
        answer = None
        if isinstance(step, str):
            yield step
        elif isinstance(step, _Poll):
            answer = poll(run, cur)
        elif isinstance(step, _Read):
            answer = deltas.read_blocking(run.pk, cur.delta, block_ms=step.block_ms)
        else:
            time.sleep(SSE_POLL_SECONDS)


async def event_stream_async(
    request: HttpRequest, run: RunRow, cur: Cursor, follow: bool
) -> AsyncGenerator[str, None]:
    """The ASGI driver of :func:`_frames`: a coroutine; queries run on the shared database threads."""
    core = _frames(cur, follow)
    answer: object = None
    while (step := _next(core, answer)) is not None:
        answer = None
        if isinstance(step, str):
            yield step
        elif isinstance(step, _Poll):
            answer = await db_call(request, poll, run, cur)
        elif isinstance(step, _Read):
            answer = await deltas.read_async(run.pk, cur.delta, block_ms=step.block_ms)
        else:
            await asyncio.sleep(SSE_POLL_SECONDS)


def _next(core: Generator[_Step, Any, None], answer: object) -> _Step | None:
    try:
        return core.send(answer)
    except StopIteration:
        return None
