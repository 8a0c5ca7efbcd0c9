"""The try-it panel: run a version (even one no label points at) against an input as a real run
through the harness, beside the production version's answer to the same input.

Both are ordinary runs created by ``runs.services.run_submit``, pinned to their version at submission
and marked ``playground``; their spend lands on their prompt version in the ledger like any run's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from agentops.prompts import selectors
from agentops.prompts.models import PRODUCTION, PromptVersion
from agentops.prompts.resolution import as_resolved
from runs.models import Agent, Run
from runs.services import run_submit
from tenants.models import Membership, Tenant


@dataclass
class TryPair:
    candidate: Run
    production: Run | None

    @property
    def runs(self) -> list[Run]:
        return [self.candidate, *([self.production] if self.production else [])]


@transaction.atomic
def playground_start(*, tenant: Tenant, membership: Membership, version: PromptVersion, agent: Agent, input: str,
                     scenario: str = "") -> TryPair:
    if agent.tenant_id != tenant.pk or version.tenant_id != tenant.pk:
        raise ValidationError("No such agent.")
    production = selectors.version_by_label(prompt=version.prompt, label=PRODUCTION)
    meta: dict[str, Any] = {"scenario": scenario} if scenario else {}
    common: dict[str, Any] = {"tenant": tenant, "agent": agent, "input": input, "submitted_by": membership.user, "role": membership.role, "playground": True}
    candidate = run_submit(**common, metadata={**meta, "playground": {"prompt": version.prompt.name, "version": version.number, "side": "candidate"}},
                           prompt=as_resolved(version))
    other = None
    if production is not None and production.pk != version.pk:
        other = run_submit(**common, prompt=as_resolved(production),
                           metadata={**meta, "playground": {"prompt": version.prompt.name, "version": production.number,
                                                            "beside_run": candidate.pk, "side": "production"}})
        # The candidate names its comparison so the panel can pair them.
        Run.objects.for_tenant(tenant).filter(pk=candidate.pk).update(
            metadata={**candidate.metadata, "playground": {**candidate.metadata["playground"], "beside_run": other.pk}})
        candidate.refresh_from_db(fields=["metadata"])
    return TryPair(candidate=candidate, production=other)


def recent_pairs(*, version: PromptVersion, limit: int = 5) -> list[TryPair]:
    """The latest try-it runs of ``version`` with their production runs."""
    runs = list(Run.objects.for_tenant(version.tenant_id).filter(playground=True, prompt_version_id=version.pk)
                .filter(metadata__playground__side="candidate").order_by("-created_at", "-id")[:limit])
    beside_ids = [r.metadata.get("playground", {}).get("beside_run") for r in runs]
    beside = {r.pk: r for r in Run.objects.for_tenant(version.tenant_id).filter(pk__in=[i for i in beside_ids if isinstance(i, int)])}
    return [TryPair(candidate=r, production=beside.get(b)) for r, b in zip(runs, beside_ids, strict=True)]
