"""Reading facts for the Memory page and the API (always one tenant's)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count

from agentops.memory.models import Fact
from tenants.models import Tenant


def facts_for_list(
    *, tenant: Tenant | int, subject: str = "", q: str = "", flagged: bool | None = None
) -> Any:
    """The tenant's facts, filtered: an exact subject, words of the text (full-text on PostgreSQL, the
    GIN index on ``search``; a substring on SQLite), flagged or not. Callers page it (keyset)."""
    qs: Any = Fact.objects.for_tenant(tenant)
    if subject:
        qs = qs.filter(subject=subject)
    if q:
        if connection.vendor == "postgresql":
            qs = qs.extra(where=["memory_fact.search @@ websearch_to_tsquery('english', %s)"], params=[q])
        else:
            qs = qs.filter(text__icontains=q)
    if flagged is not None:
        qs = qs.filter(flagged=flagged)
    return qs


def fact_get(*, tenant: Tenant | int, fact_id: int) -> Fact | None:
    return Fact.objects.for_tenant(tenant).filter(pk=fact_id).first()


def subject_count(*, tenant: Tenant | int, subject: str) -> dict[str, int]:
    row = Fact.objects.for_tenant(tenant).filter(subject=subject).aggregate(n=Count("pk"))
    return {"facts": int(row["n"] or 0)}


def facts_by_id(*, tenant: Tenant | int, fact_ids: list[int]) -> dict[int, Fact]:
    """The tenant's facts among ``fact_ids`` (a missing id was deleted or erased, or is not the tenant's)."""
    return {f.pk: f for f in Fact.objects.for_tenant(tenant).filter(pk__in=fact_ids)}
