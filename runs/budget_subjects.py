"""The runs app's side of ``budgets.subjects``: what budgets may know about runs and agents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Avg, F, Q

from budgets.subjects import Reply, SeedRun
from runs.models import Agent, Message, Run, RunStatus


class RunSubjects:
    def agents(self, *, tenant_id: int) -> list[Agent]:
        return list(Agent.objects.for_tenant(tenant_id).order_by("name"))

    def agent_get(self, *, tenant_id: int, agent_id: int) -> Agent:
        try:
            return Agent.objects.for_tenant(tenant_id).get(pk=agent_id)
        except Agent.DoesNotExist:
            raise LookupError(agent_id) from None

    def agent_names(self, *, ids: set[Any]) -> dict[Any, str]:
        return dict(Agent.unscoped.filter(pk__in=ids).values_list("pk", "name"))

    def run_attribution(self, *, run_id: int) -> dict[str, Any]:
        return Run.unscoped.filter(pk=run_id).values("agent_id", "prompt_version_id").first() or {}

    def run_charge(self, *, run_id: int, cost: Decimal, input_tokens: int, output_tokens: int) -> None:
        Run.unscoped.filter(pk=run_id).update(
            cost=F("cost") + cost, input_tokens=F("input_tokens") + input_tokens, output_tokens=F("output_tokens") + output_tokens
        )

    def runs_live(self, *, run_ids: set[int], now: datetime) -> set[int]:
        return set(
            Run.unscoped.filter(pk__in=run_ids, status=RunStatus.RUNNING, lease_expires_at__gt=now).values_list("pk", flat=True)
        )

    def unaccounted_reply(self, *, run_id: int, since: datetime, accounted: set[str]) -> Reply | None:
        msg = (
            Message.unscoped.filter(run_id=run_id, role="assistant", usage__isnull=False, created_at__gte=since)
            .exclude(response_id__in=accounted).order_by("seq").first()
        )
        if msg is None or not isinstance(msg.usage, dict):
            return None
        return Reply(usage=msg.usage, model=msg.model, response_id=msg.response_id)

    def costly_runs(self, *, tenant_id: int, start: datetime, end: datetime, limit: int,
                    after: tuple[Decimal, int] | None = None) -> list[Run]:
        """The dearest runs created in [start, end), ``limit`` of them after ``after``: the (cost, id) of the
        last run of the page before (keyset: no OFFSET).

        Finished runs are walked down the (tenant, cost_rank, id) index from the dearest; runs not finished
        (cost_rank NULL: queued, running, waiting; few) come from their own partial index, and the two are
        merged. Every run is in exactly one of the two, with cost_rank = cost in the first (migration 0012).
        """
        window = Run.objects.for_tenant(tenant_id).filter(created_at__gte=start, created_at__lt=end)
        finished = window.filter(cost_rank__gt=0)
        unfinished = window.filter(cost_rank__isnull=True, cost__gt=0)
        if after is not None:
            cost, pk = after
            finished = finished.filter(Q(cost_rank__lt=cost) | Q(cost_rank=cost, pk__lt=pk), cost_rank__lte=cost)
            unfinished = unfinished.filter(Q(cost__lt=cost) | Q(cost=cost, pk__lt=pk), cost__lte=cost)
        runs = [*finished.select_related("agent").order_by("-cost_rank", "-id")[:limit],
                *unfinished.select_related("agent").order_by("-cost", "-id")[:limit]]
        runs.sort(key=lambda r: (r.cost, r.pk), reverse=True)
        return runs[:limit]

    def average_run_cost(self, *, tenant_id: int, agent_id: int, start: datetime, end: datetime) -> Decimal | None:
        qs = Run.objects.for_tenant(tenant_id).filter(agent_id=agent_id, created_at__gte=start, created_at__lt=end, cost__gt=0)
        return qs.aggregate(a=Avg("cost"))["a"]

    def demo_runs_delete(self, *, tenant_id: int) -> None:
        Run.unscoped.filter(tenant_id=tenant_id, metadata__budgets_demo=True).delete()

    def agents_ensure(self, *, tenant_id: int, names: list[str], system_prompt: str, model: str = "") -> list[Agent]:
        defaults: dict[str, Any] = {"system_prompt": system_prompt} | ({"model": model} if model else {})
        return [Agent.unscoped.get_or_create(tenant_id=tenant_id, name=name, defaults=defaults)[0] for name in names]

    def runs_seed(self, *, tenant_id: int, runs: list[SeedRun]) -> list[int]:
        objs = [
            Run(tenant_id=tenant_id, agent_id=r.agent_id, input=r.input, status=r.status, metadata=r.metadata,
                submitted_by_id=r.submitted_by_id, **({"created_at": r.created_at} if r.created_at else {}))
            for r in runs
        ]
        return [r.pk for r in Run.unscoped.bulk_create(objs, batch_size=5000)]

    def runs_delete(self, *, tenant_id: int) -> None:
        Run.unscoped.filter(tenant_id=tenant_id).delete()
