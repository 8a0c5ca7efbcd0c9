"""Reads for runs: what the API returns and the console lists."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from agentops.redact import redact, redact_obj
from runs.models import Agent, Run, RunEvent
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
    }


def events_after(*, run: Run, after_id: int, limit: int = 200) -> QuerySet[RunEvent]:
    return RunEvent.objects.for_tenant(run.tenant_id).filter(run=run, pk__gt=after_id).order_by("pk")[:limit]
