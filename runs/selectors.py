"""Reads for runs: what the API returns and the console lists."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from agentops.memory import selectors as memory_selectors
from agentops.redact import redact, redact_obj
from runs.models import Agent, Message, Run, RunEvent
from tenants.access import parse_id
from tenants.models import Tenant
from tenants.money import money_str


def run_get(*, tenant: Tenant | int, run_id: Any) -> Run:
    """The tenant's run or Run.DoesNotExist — the same answer for "missing" and "not yours"."""
    ident = parse_id(run_id)
    if ident is None:
        raise Run.DoesNotExist
    return Run.objects.for_tenant(tenant).select_related("agent", "tenant").get(pk=ident)


def agent_by_ref(*, tenant: Tenant, ref: Any) -> Agent:
    """An agent of this tenant by id or name."""
    qs = Agent.objects.for_tenant(tenant)
    if isinstance(ref, int) and not isinstance(ref, bool):
        return qs.get(pk=ref)
    if isinstance(ref, str) and 0 < len(ref) <= 100:
        return qs.get(name=ref)
    raise Agent.DoesNotExist


def run_as_dict(run: Run) -> dict[str, Any]:
    """The API shape; text a caller or the model supplied is redacted as everywhere it is shown."""
    return {
        "id": run.pk,
        "agent": run.agent.name,
        "status": run.status,
        "outcome": run.outcome or None,
        "error": {"type": run.error_type, "message": redact(run.error_message)} if run.error_type else None,
        "result": redact(run.result) or None,
        "model": run.model_used or None,
        "iterations": run.iterations,
        "cost_usd": money_str(run.cost),
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "metadata": redact_obj(run.metadata),
        "flags": list(run.flags or []),
    }


def events_after(*, run: Run, after_id: int, limit: int = 200) -> QuerySet[RunEvent]:
    return RunEvent.objects.for_tenant(run.tenant_id).filter(run=run, pk__gt=after_id).order_by("pk")[:limit]


# --- the runs listing: filters and keyset pagination ---------------------------------------------

class CursorError(ValueError):
    pass


@dataclass(frozen=True)
class RunFilters:
    statuses: tuple[str, ...] = ()
    agent: str | None = None
    flag: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


def cursor_encode(*, created_at: datetime, run_id: int) -> str:
    """Opaque to callers: the (created_at, id) of the last run of a page, as URL-safe base64."""
    raw = json.dumps([created_at.isoformat(), run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        if not cursor.isascii() or len(cursor) > 200:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, run_id = json.loads(raw)
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None or not isinstance(run_id, int) or isinstance(run_id, bool) or run_id < 1:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise CursorError("cursor is not one this API returned.")
    return at, run_id


def runs_page(*, tenant: Tenant, filters: RunFilters, limit: int, cursor: str | None = None) -> tuple[list[Run], str | None]:
    """Newest first, ordered by (created_at, id) so runs created in the same instant are neither
    repeated nor skipped between pages; the cursor is the last row's key, not an offset."""
    qs = Run.objects.for_tenant(tenant).select_related("agent")
    if filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    if filters.agent is not None:
        qs = qs.filter(agent__name=filters.agent)
    if filters.flag is not None:
        qs = qs.filter(flags__has_item=filters.flag)
    if filters.created_after is not None:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before is not None:
        qs = qs.filter(created_at__lt=filters.created_before)
    if cursor:
        at, last_id = cursor_decode(cursor)
        # The redundant created_at <= at is the index range (tenant, -created_at) starts from; the
        # OR alone is a filter PostgreSQL applies to every newer row, so deep pages would slow down.
        qs = qs.filter(created_at__lte=at).filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=last_id))
    rows = list(qs.order_by("-created_at", "-pk")[: limit + 1])
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, cursor_encode(created_at=rows[-1].created_at, run_id=rows[-1].pk)


def messages_after(*, run: Run, after_seq: int, limit: int) -> list[Message]:
    """The run's durable message log in order, from the turn after ``after_seq``."""
    return list(Message.objects.for_tenant(run.tenant_id).filter(run=run, seq__gt=after_seq).order_by("seq")[:limit])


def message_as_dict(message: Message) -> dict[str, Any]:
    """Content blocks as stored, redacted like every other API output."""
    return {
        "seq": message.seq,
        "role": message.role,
        "content": redact_obj(message.content),
        "model": message.model or None,
        "stop_reason": message.stop_reason or None,
        "usage": message.usage,
        "created_at": message.created_at.isoformat(),
        "flags": list(message.flags or []),
        "scores": dict(message.scores or {}),
    }


@dataclass(frozen=True)
class RecalledFact:
    fact_id: int
    fact: Any  # agentops.memory.models.Fact, or None: deleted or erased since the run recalled it


def recalled_facts(run: Run) -> tuple[str, list[RecalledFact]] | None:
    """The subject and the facts the run started with (its ``memory_recalled`` event), each still
    stored or erased; None when the run recalled nothing. Two indexed reads: the event is among the
    run's first (written at its first model call)."""
    event = (
        RunEvent.objects.for_tenant(run.tenant_id).filter(run=run, type="memory_recalled").order_by("id").first()
    )
    if event is None or not isinstance(event.data, dict):
        return None
    ids = [i for i in event.data.get("fact_ids") or [] if isinstance(i, int)]
    found = memory_selectors.facts_by_id(tenant=run.tenant_id, fact_ids=ids)
    return str(event.data.get("subject") or ""), [RecalledFact(i, found.get(i)) for i in ids]
