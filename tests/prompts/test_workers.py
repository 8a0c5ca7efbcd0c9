"""A label moved while a run is in flight does not change the version that run uses (real rqworkers).

The run pins production (v1) at its first model call, then waits for a human; production moves to v2;
the approval resumes the run in a new job (a fresh driver that reloads the run from the database, as
after a worker restart), and its later model calls still use v1. A run submitted after the move uses v2.
"""

from __future__ import annotations

import pytest

from agentops.escalations.models import Escalation
from agentops.escalations.services import escalation_decide
from agentops.prompts import services
from agentops.prompts.models import PromptVersion
from runs.models import Run, RunStatus, Span
from runs.services import run_submit
from tenants.models import Membership, Role
from tests.escalations.conftest import TOOLS, _scripted, agent, prices  # noqa: F401 - fixtures
from tests.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CAPPED, RunStatus.CANCELLED)


def _status(run: Run) -> str:
    return Run.objects.values_list("status", flat=True).get(pk=run.pk)


def test_a_label_move_mid_run_does_not_change_the_runs_version(agent, members, evals):  # type: ignore[no-untyped-def]  # noqa: F811
    tenant, admin = agent.tenant, members[Role.ADMIN]
    membership = Membership.objects.get(tenant=tenant, user=admin)
    prompt = services.prompt_create(tenant=tenant, actor=admin, name="refunds")
    content = {"model": "claude-sonnet-4-6", "params": {"max_tokens": 512}, "tools": TOOLS}
    v1 = services.version_create(tenant=tenant, actor=admin, prompt=prompt, data={**content, "system": "V1: you are careful."})
    v2 = services.version_create(tenant=tenant, actor=admin, prompt=prompt, data={**content, "system": "V2: you are quick."})
    evals.set(v1, "0.9")
    evals.set(v2, "0.9")
    services.label_move(tenant=tenant, actor=admin, membership=membership, prompt=prompt, label_name="production", version=v1)
    agent.prompt, agent.prompt_label = prompt, "production"
    agent.save()

    with workers(2):
        run = run_submit(tenant=tenant, agent=agent, input="Email the customer.", role=Role.OPERATOR, metadata={"scenario": "email_customer"})
        wait_for(lambda: _status(run) in (RunStatus.AWAITING_APPROVAL, *TERMINAL), timeout=60, message="the run to wait for approval")
        run.refresh_from_db()
        assert run.status == RunStatus.AWAITING_APPROVAL, (run.status, run.error_message)
        assert (run.prompt_version_id, run.prompt_version_number, run.prompt_sha256) == (v1.pk, 1, v1.sha256)

        services.label_move(tenant=tenant, actor=admin, membership=membership, prompt=prompt, label_name="production", version=v2)
        esc = Escalation.objects.get(run=run, status="pending")
        escalation_decide(escalation_id=esc.pk, tenant=tenant, decision="approve", comment="ok", actor=admin)
        wait_for(lambda: _status(run) in TERMINAL, timeout=60, message="the run to finish")
        later = run_submit(tenant=tenant, agent=agent, input="Hello.", role=Role.OPERATOR, metadata={"scenario": "default"})
        wait_for(lambda: _status(later) in TERMINAL, timeout=60, message="the later run to finish")

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert (run.prompt_version_id, run.prompt_sha256) == (v1.pk, v1.sha256)
    chats = [s.attributes for s in Span.objects.filter(run=run, name__startswith="chat ")]
    assert len(chats) >= 2  # before and after the approval
    assert {a["agentops.prompt_version_id"] for a in chats} == {v1.pk}
    roots = [s.attributes for s in Span.objects.filter(run=run, name__startswith="invoke_agent ")]
    assert len(roots) >= 2 and all(a.get("agentops.prompt_version") == 1 and a.get("agentops.prompt_sha256") == v1.sha256 for a in roots)
    later.refresh_from_db()
    assert (later.prompt_version_id, later.prompt_version_number) == (v2.pk, 2)
    assert PromptVersion.objects.get(pk=v1.pk).system == "V1: you are careful."
