"""The evals demo step: a suite of 20+ cases per Acme agent, and v1-v3 history with v3 regressing so
the promotion gate refuses it."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from agentops.escalations import demo as escalation_demo
from agentops.evals import demo
from agentops.evals.models import EvalCase, EvalRun, EvalSuite
from agentops.prompts.gate import check_promotion
from agentops.prompts.models import PromptLabel
from runs import demo as runs_demo
from tenants.models import Membership, Role

pytestmark = pytest.mark.django_db


def test_the_demo_step_seeds_suites_and_a_history_with_one_regression(tenant, members, settings):
    settings.ANTHROPIC_API_KEY, settings.AGENTOPS_SCENARIO = "", ""
    tier = tenant.tier
    tier.max_concurrent_runs = 100
    tier.save()
    runs_demo.setup_tenant(tenant, members[Role.ADMIN])
    escalation_demo.ensure_agent(tenant, members[Role.ADMIN])
    ctx = SimpleNamespace(tenants={"acme": tenant}, users={"acme": members}, redis_ok=False, stdout=io.StringIO(),
                          say=lambda message: None)
    demo.run(ctx)
    suites = EvalSuite.objects.filter(tenant=tenant)
    assert suites.count() == 5 and all(EvalCase.objects.filter(suite=s).count() >= 20 for s in suites)
    support = suites.get(name="support-regressions")
    history = {r.prompt_version.number: r for r in EvalRun.objects.filter(suite=support)}
    assert sorted(history) == [1, 2, 3] and all(r.status == "finished" for r in history.values())
    assert history[3].regression and not history[2].regression and history[3].pass_rate < history[2].pass_rate
    label = PromptLabel.objects.get(prompt=support.prompt, name="production")
    decision = check_promotion(label=label, version=history[3].prompt_version, actor=Membership.objects.get(user=members[Role.ADMIN]),
                               reason="", override=False)
    assert not decision.allowed and decision.code in ("regression", "critical_failing")
    demo.run(ctx)  # idempotent
    assert EvalRun.objects.filter(suite=support).count() == 3 and EvalCase.objects.filter(suite=support).count() == 22
