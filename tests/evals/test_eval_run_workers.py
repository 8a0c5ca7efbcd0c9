"""An eval run of 24 cases on two real workers: progress while it runs, the right verdict for every
scripted output, nothing side-effecting executed, and the prompts gate reading the result."""

from __future__ import annotations

import time

import pytest

from agentops.evals import services
from agentops.evals.models import EvalResult, EvalRun, EvalRunStatus
from agentops.toolbox.models import Refund, SentEmail
from budgets.models import SpendEntry
from runs.models import Run
from tests.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REFUND_FIXTURE = {"tool": "issue_refund", "arguments": {"transaction_id": "TX-5001"},
                  "result": {"status": "refunded", "refund_id": "RF-EVAL", "amount": "40.00"}}


def cases() -> list[tuple[dict, bool]]:
    """(definition, whether it must pass) — 24 cases, 12 passing."""
    out = []
    for i in range(6):
        out.append(({"name": f"greets-{i}", "input": f"Hello {i}", "metadata": {"scenario": "default"},
                     "checks": [{"type": "contains", "value": "support assistant"}, {"type": "max_turns", "value": 1}]}, True))
        out.append(({"name": f"no-refund-talk-{i}", "input": f"Hi {i}", "metadata": {"scenario": "default"},
                     "checks": [{"type": "regex", "pattern": "refund", "flags": "i"}]}, False))
    for i in range(4):
        out.append(({"name": f"refunds-{i}", "input": f"Refund my duplicate charge {i}", "metadata": {"scenario": "support_refund"},
                     "fixtures": [REFUND_FIXTURE], "critical": True,
                     "checks": [{"type": "tool_called", "tool": "issue_refund", "arguments": {"amount": 40}, "succeeded": True},
                                {"type": "contains", "value": "$40.00"}]}, True))
        out.append(({"name": f"no-email-{i}", "input": f"Tell the customer {i}", "metadata": {"scenario": "email_customer"},
                     "checks": [{"type": "tool_not_called", "tool": "send_email"}]}, False))
    for i, (judge, passes) in enumerate([("judge_pass", True), ("judge_pass", True), ("judge_fail", False), ("judge_fail", False)]):
        out.append(({"name": f"judged-{i}", "input": f"What is the refund policy? {i}",
                     "metadata": {"scenario": "kb_answer", "judge_scenario": judge},
                     "checks": [{"type": "judge", "rubric": "States the refund window.", "threshold": 0.7}]}, passes))
    return out


def test_an_eval_run_of_24_cases_reports_progress_and_the_right_verdicts(suite, admin_user):
    expected = {}
    for definition, passes in cases():
        services.case_save(suite=suite, actor=admin_user, data=definition)
        expected[definition["name"]] = passes
    version = suite.prompt.versions.get(number=2)
    with workers(2):
        eval_run = services.eval_run_start(suite=suite, version=version, actor=admin_user)
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            row = EvalRun.objects.get(pk=eval_run.pk)
            seen.append(row.done)
            if row.status == EvalRunStatus.FINISHED:
                break
            time.sleep(0.05)
        wait_for(lambda: EvalRun.objects.get(pk=eval_run.pk).status == EvalRunStatus.FINISHED, timeout=5, message="the eval run")
    eval_run.refresh_from_db()
    assert seen == sorted(seen), "progress never goes backwards"
    assert any(0 < d < 24 for d in seen), f"progress was reported while running: {sorted(set(seen))}"
    results = {r.case_name: r for r in EvalResult.objects.filter(eval_run=eval_run)}
    assert {n: r.passed for n, r in results.items()} == expected
    assert eval_run.total == eval_run.done == 24 and eval_run.passed == 12 and str(eval_run.pass_rate) == "0.5000"
    # Each case ran as a real run pinned to the exact version, marked as an eval run.
    runs = Run.objects.filter(eval_result__eval_run=eval_run)
    assert runs.count() == 24 and set(runs.values_list("prompt_version_id", flat=True)) == {version.pk}
    assert all(r.metadata["eval"]["eval_run"] == eval_run.pk for r in runs)
    # Nothing side-effecting ran: the refund came from the fixture, the e-mail was never sent.
    assert Refund.objects.count() == 0 and SentEmail.objects.count() == 0
    assert results["no-email-0"].tool_calls[0]["status"] == "error" and "no_fixture" in results["no-email-0"].tool_calls[0]["result"]
    # Reasons name what happened; the judge's model call was charged to the case's run.
    judged = results["judged-2"]
    assert "score 0.20" in judged.verdicts[-1]["reason"]
    assert judged.cost > 0 and judged.cost == judged.run.cost and SpendEntry.objects.filter(run_id=judged.run_id).count() == 3
    assert eval_run.cost == sum(r.cost for r in results.values())
