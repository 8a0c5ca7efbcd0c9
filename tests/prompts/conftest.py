"""A prompt with versions, and the gate's eval-results test double (registered only while a test uses it)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from agentops.prompts import gate, services
from agentops.prompts.models import PromptVersion
from runs.models import ToolGrant
from tenants.models import Membership, Role

BASE = {"system": "You are Acme's support agent. Be brief.", "model": "claude-haiku-4-5", "params": {"max_tokens": 256}, "tools": []}


class EvalDouble:
    """Evidence per version id, as the evals app would report its latest finished eval run."""

    def __init__(self) -> None:
        self.by_version: dict[int, gate.EvalEvidence] = {}
        self._next = 1

    def set(self, version: PromptVersion, pass_rate: str, *, failing: tuple[str, ...] = (), critical: tuple[str, ...] = (),
            finished: bool = True) -> gate.EvalEvidence:
        ev = gate.EvalEvidence(eval_run_id=self._next, finished=finished, pass_rate=Decimal(pass_rate), failing_cases=failing,
                               failing_critical=critical)
        self._next += 1
        self.by_version[version.pk] = ev
        return ev

    def latest_for(self, version: PromptVersion) -> gate.EvalEvidence | None:
        return self.by_version.get(version.pk)


@pytest.fixture
def evals() -> Iterator[EvalDouble]:
    double = EvalDouble()
    previous = gate.eval_source()  # the evals app's real source: put back after the test
    gate.register_eval_source(double)
    yield double
    gate.register_eval_source(previous)


@pytest.fixture
def prompt(tenant, members):  # type: ignore[no-untyped-def]
    return services.prompt_create(tenant=tenant, actor=members[Role.ADMIN], name="support", path="support")


def new_version(tenant, user, prompt, **changes):  # type: ignore[no-untyped-def]
    return services.version_create(tenant=tenant, actor=user, prompt=prompt, data={**BASE, **changes}, changelog=changes.pop("changelog", ""))


@pytest.fixture
def membership(tenant, members):  # type: ignore[no-untyped-def]
    return lambda role: Membership.objects.get(tenant=tenant, user=members[role])


@pytest.fixture
def granted(tenant):  # type: ignore[no-untyped-def]
    ToolGrant.objects.create(tenant=tenant, tool_name="lookup_account")
    return "lookup_account"
