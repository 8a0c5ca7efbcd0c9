"""What budgets needs to know about the runs and agents it charges, as an interface it owns.

Budgets sits below the harness and the ``runs`` app, so it never imports them: ``runs`` registers
an implementation in its ``AppConfig.ready()`` (``runs/budget_subjects.py``). Runs and agents are
referenced by id; an unset interface fails loudly at first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class Reply:
    """A model reply found in a run's durable message log (its usage is what the call cost)."""

    usage: dict[str, Any]
    model: str
    response_id: str


@dataclass(frozen=True)
class SeedRun:
    """A finished (or running) run to create for a benchmark or the demo's spend history."""

    agent_id: int
    input: str
    status: str
    metadata: dict[str, Any]
    created_at: datetime | None = None
    submitted_by_id: int | None = None


@dataclass(frozen=True)
class ChargedRun:
    """The fields of a run that reserving a model call reads (a ``runs.models.Run`` has them too)."""

    pk: int
    tenant_id: int
    agent_id: int
    submitted_by_id: int | None = None
    api_key_id: int | None = None


class RunSubjects(Protocol):
    def agents(self, *, tenant_id: int) -> list[Any]:
        """The tenant's agents (objects with ``pk``, ``name``, ``model``, ``tenant_id``), by name."""
        ...

    def agent_get(self, *, tenant_id: int, agent_id: int) -> Any:
        """One of the tenant's agents; raises ``LookupError`` if it is not the tenant's."""
        ...

    def agent_names(self, *, ids: set[Any]) -> dict[Any, str]: ...

    def run_attribution(self, *, run_id: int) -> dict[str, Any]:
        """``agent_id`` and ``prompt_version_id`` of a run, for the ledger row."""
        ...

    def run_charge(self, *, run_id: int, cost: Decimal, input_tokens: int, output_tokens: int) -> None: ...

    def runs_live(self, *, run_ids: set[int], now: datetime) -> set[int]:
        """The runs among ``run_ids`` still running under a live lease."""
        ...

    def unaccounted_reply(self, *, run_id: int, since: datetime, accounted: set[str]) -> Reply | None: ...

    def costly_runs(self, *, tenant_id: int, start: datetime, end: datetime, limit: int,
                    after: tuple[Decimal, int] | None = None) -> list[Any]:
        """The dearest runs created in [start, end), by cost then id, descending; after ``after`` = (cost, id)."""
        ...

    def average_run_cost(self, *, tenant_id: int, agent_id: int, start: datetime, end: datetime) -> Decimal | None: ...

    def demo_runs_delete(self, *, tenant_id: int) -> None: ...

    # -- seeding, for benchmarks and the demo's spend history ----------------------------------
    def agents_ensure(self, *, tenant_id: int, names: list[str], system_prompt: str, model: str = "") -> list[Any]:
        """The tenant's agents of these names, created when missing (``model`` blank: the default)."""
        ...

    def runs_seed(self, *, tenant_id: int, runs: list[SeedRun]) -> list[int]:
        """Create the runs in bulk; their ids, in order."""
        ...

    def runs_delete(self, *, tenant_id: int) -> None:
        """Every run of a benchmark tenant."""
        ...


_registered: list[RunSubjects] = []


def register(subjects: RunSubjects) -> None:
    _registered[:] = [subjects]


def subjects() -> RunSubjects:
    if not _registered:
        raise RuntimeError("no run subjects registered: is the 'runs' app installed?")
    return _registered[0]


class VersionNames(Protocol):
    def version_names(self, *, ids: set[Any]) -> dict[Any, str]:
        """``{prompt version id: "support v3"}`` (the prompts app registers it)."""
        ...


_version_names: list[VersionNames] = []


def register_version_names(names: VersionNames) -> None:
    _version_names[:] = [names]


def version_names(ids: set[Any]) -> dict[Any, str]:
    """Names of prompt versions for spend charts; without the prompts app, none."""
    return _version_names[0].version_names(ids=ids) if _version_names else {}
