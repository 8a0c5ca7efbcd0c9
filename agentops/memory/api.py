"""The memory API (a django-ninja router, scope ``memory``): list a tenant's facts by subject, and
erase everything about a subject (audited, like the console's erasure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router

from agentops.keyset import BadCursor, keyset_page
from agentops.memory import facts, selectors, services
from agentops.memory.models import Fact
from tenants.api import ApiError, ApiKeyAuth, QueryInt, RequestBody, ResponseBody, api_key

router = Router(tags=["memory"], auth=ApiKeyAuth("memory"))
MAX_LIMIT = 200


class FactOut(ResponseBody):
    id: int
    subject: str
    text: str
    source: str = Field(description="tool (the remember tool), extraction or operator.")
    source_run_id: int | None
    source_seq: int | None = Field(description="The turn (message seq) of the source run it came from.")
    agent_id: int | None
    flags: list[str] = Field(description="Online evaluator flags; a flagged fact is never recalled.")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class FactList(ResponseBody):
    data: list[FactOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class EraseIn(RequestBody):
    subject: str = Field(
        min_length=1, max_length=facts.MAX_SUBJECT, description="The subject key, exactly as runs name it."
    )


class Erased(ResponseBody):
    subject: str
    facts_erased: int


def fact_as_dict(fact: Fact) -> dict[str, Any]:
    return {
        "id": fact.pk,
        "subject": fact.subject,
        "text": fact.text,
        "source": fact.source,
        "source_run_id": fact.source_run_id,
        "source_seq": fact.source_seq,
        "agent_id": fact.agent_id,
        "flags": list(fact.flags or []),
        "created_at": fact.created_at,
        "last_used_at": fact.last_used_at,
        "expires_at": fact.expires_at,
    }


@router.get("/memory/facts", url_name="api_memory_facts", response=FactList)
def memory_facts(
    request: HttpRequest,
    subject: str | None = Query(
        None, min_length=1, max_length=facts.MAX_SUBJECT, description="Only this subject's facts."
    ),
    limit: QueryInt = Query(50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(None, description="The next_cursor of the previous page."),
) -> dict[str, Any]:
    """The tenant's facts, newest first, in keyset pages (flagged ones included, with their flags)."""
    if subject is not None and facts.clean_subject(subject) != subject:
        raise ApiError(
            400, "invalid_request", "subject: not a subject key (no NUL bytes or surrounding spaces)."
        )
    try:
        page = keyset_page(
            selectors.facts_for_list(tenant=api_key(request).tenant, subject=subject or ""),
            field="created_at",
            after=cursor or "",
            size=limit,
        )
    except BadCursor as exc:
        raise ApiError(400, "invalid_request", f"cursor: {exc}")
    return {"data": [fact_as_dict(f) for f in page.items], "next_cursor": page.next_cursor or None}


@router.post("/memory/erase", url_name="api_memory_erase", response=Erased)
def memory_erase(request: HttpRequest, body: EraseIn) -> dict[str, Any]:
    """Erase every fact about a subject: gone from the store, recall and every page; an audit row
    records the subject and the count (never the text)."""
    key = api_key(request)
    erased = services.subject_erase(tenant=key.tenant, actor=None, actor_key=key, subject=body.subject)
    return {"subject": body.subject, "facts_erased": erased}
