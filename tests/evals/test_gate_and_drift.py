"""The prompts gate reads real eval runs; scheduled runs against production flag drift."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentops.evals import services
from agentops.evals.models import EvalAlert, EvalCase, EvalRun, Schedule, Trigger
from agentops.prompts.gate import check_promotion
from agentops.prompts.models import PromptLabel
from tenants.models import Membership, WebhookDelivery
from tests.evals.helpers import drive_eval, greeting_cases

pytestmark = pytest.mark.django_db


def _run(suite, number, actor, trigger=Trigger.MANUAL) -> EvalRun:  # type: ignore[no-untyped-def]
    return drive_eval(services.eval_run_start(suite=suite, version=suite.prompt.versions.get(number=number), actor=actor, trigger=trigger))


def _break(suite, n: int) -> None:  # type: ignore[no-untyped-def]
    """The next run's outputs no longer meet n of the cases (as a changed prompt or model would)."""
    for case in EvalCase.objects.filter(suite=suite).order_by("name")[:n]:
        case.checks = [{"type": "contains", "value": "refund"}]
        case.save()


def test_the_gate_refuses_a_version_whose_eval_run_regressed(suite, admin_user):
    for data in greeting_cases(10, 0):
        services.case_save(suite=suite, actor=admin_user, data=data)
    v1 = _run(suite, 1, admin_user)
    assert v1.pass_rate == 1 and v1.status == "finished"
    _break(suite, 3)
    v2 = _run(suite, 2, admin_user)
    assert str(v2.pass_rate) == "0.7000"
    label = PromptLabel.objects.get(prompt=suite.prompt, name="production")
    actor = Membership.objects.get(user=admin_user)
    decision = check_promotion(label=label, version=suite.prompt.versions.get(number=2), actor=actor, reason="", override=False)
    assert not decision.allowed and decision.code == "regression"
    assert decision.evidence.eval_run_id == v2.pk and decision.baseline.eval_run_id == v1.pk
    assert len(decision.failing_cases) == 3


def test_the_gate_refuses_a_failing_critical_case_and_accepts_a_passing_version(suite, admin_user):
    for data in greeting_cases(9, 1, critical_fail=True):
        services.case_save(suite=suite, actor=admin_user, data=data)
    _run(suite, 2, admin_user)
    label = PromptLabel.objects.get(prompt=suite.prompt, name="production")
    actor = Membership.objects.get(user=admin_user)
    v2 = suite.prompt.versions.get(number=2)
    decision = check_promotion(label=label, version=v2, actor=actor, reason="", override=False)
    assert not decision.allowed and decision.code == "critical_failing" and decision.failing_critical == ("fail-0",)
    EvalCase.objects.filter(suite=suite, name="fail-0").update(checks=[], critical=True)
    _run(suite, 2, admin_user)
    assert check_promotion(label=label, version=v2, actor=actor, reason="", override=False).allowed


def test_a_scheduled_run_against_production_flags_a_drop_and_alerts_at_twenty_points(suite, admin_user, clock):
    for data in greeting_cases(10, 0):
        services.case_save(suite=suite, actor=admin_user, data=data)
    suite.schedule = Schedule.DAILY
    suite.save()
    assert services.schedule_due() == 1 and services.schedule_due() == 0  # once per interval
    baseline = drive_eval(EvalRun.objects.get(trigger=Trigger.SCHEDULE))
    assert baseline.label == "production" and baseline.prompt_version.number == 1 and baseline.pass_rate == 1
    _break(suite, 1)
    clock.shift(timedelta(days=1, seconds=1))
    assert services.schedule_due() == 1
    small = drive_eval(EvalRun.objects.filter(trigger=Trigger.SCHEDULE).first())
    assert small.drop_points == 10 and small.regression and not small.alerted
    _break(suite, 3)
    clock.shift(timedelta(days=1, seconds=1))
    services.schedule_due()
    big = drive_eval(EvalRun.objects.filter(trigger=Trigger.SCHEDULE).first())
    assert big.drop_points == 30 and big.regression and big.alerted and big.baseline_id == baseline.pk
    alert = EvalAlert.objects.get()
    assert alert.eval_run_id == big.pk and "30.00 points below" in alert.message
    assert WebhookDelivery.objects.filter(event="evals.regression").count() == 1


def test_argument_checks_read_what_the_model_sent_not_the_redacted_ledger(suite, admin_user):
    services.case_save(suite=suite, actor=admin_user, data={
        "name": "emails", "input": "Tell the customer", "metadata": {"scenario": "email_customer"},
        "fixtures": [{"tool": "send_email", "result": {"status": "sent"}}],
        "checks": [{"type": "tool_called", "tool": "send_email", "arguments": {"to": "customer@example.com"}, "succeeded": True}]})
    eval_run = _run(suite, 1, admin_user)
    assert eval_run.passed == 1, eval_run.results.get().verdicts
