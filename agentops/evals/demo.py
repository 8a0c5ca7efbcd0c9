"""Demo step: an eval suite of 20+ cases per demo agent, and an eval history over several prompt
versions with one regression (the staging version the promotion gate refuses).

Idempotent: suites and cases are get-or-create by name, and history runs are started only for
versions that have none. Each agent's suite tests a prompt of its own, ``<agent>-agent`` (three
versions of its inline text; production on v2, staging on v3); the agent itself is left as it is. In scripted mode a
case's ``scenario_for_version`` says which scenario answers for a version, so v3's answers differ.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agentops.evals import services
from agentops.evals.definitions import clean_case
from agentops.evals.models import EvalCase, EvalRun, EvalRunStatus, EvalSuite, ResultStatus
from agentops.harness.loop import drive_run
from agentops.prompts.models import Prompt, PromptLabel, PromptVersion
from runs.models import Agent
from tenants.models import Tenant

TENANT = "acme"
REFUND = {"tool": "issue_refund", "arguments": {"transaction_id": "TX-5001"},
          "result": {"status": "refunded", "refund_id": "RF-EVAL-1", "amount": "40.00"}}
EMAIL = {"tool": "send_email", "result": {"status": "sent", "message_id": "msg-eval-1"}}
HANDOFF = {"tool": "escalate_to_human", "result": {"decision": "approved", "operator_comment": "Taken over."}}


def cases_for(agent: Agent) -> list[dict[str, Any]]:
    """22 cases from the agent's tools; v3 answers some of them worse (the demo's regression)."""
    tools = set(agent.tools or [])
    out: list[dict[str, Any]] = []
    for i in range(6):
        out.append({"name": f"greeting-{i + 1}", "input": f"Hello, is anyone there? ({i + 1})", "tags": ["smalltalk"],
                    "metadata": {"scenario": "default", **({"scenario_for_version": {"3": "unknown_tool"}} if i < 3 else {})},
                    "checks": [{"type": "contains", "value": "How can I help"}, {"type": "max_turns", "value": 2},
                               {"type": "max_cost", "value": "0.05"}]})
    for i in range(5):
        case: dict[str, Any] = {"name": f"policy-{i + 1}", "input": f"What is your refund policy? ({i + 1})", "tags": ["policy"],
                "metadata": {"scenario": "kb_answer", "judge_scenario": "judge_pass" if i != 4 else "judge_fail"},
                "checks": [{"type": "regex", "pattern": r"\b30 days\b"}, {"type": "not_contains", "value": "guarantee"}]}
        if i >= 3:
            case["checks"].append({"type": "judge", "rubric": "States the 30-day refund window and the original payment method.",
                                   "threshold": 0.7})
        if "search_knowledge_base" in tools:
            case["checks"].append({"type": "tool_called", "tool": "search_knowledge_base"})
        out.append(case)
    if "issue_refund" in tools:
        for i in range(5):
            out.append({"name": f"duplicate-refund-{i + 1}", "input": f"I was charged twice on ACC-1001 ({i + 1}).", "critical": i == 0,
                        "tags": ["refunds"], "fixtures": [REFUND],
                        "metadata": {"scenario": "support_refund", **({"scenario_for_version": {"3": "invalid_args"}} if i < 2 else {})},
                        "checks": [{"type": "tool_called", "tool": "issue_refund", "arguments": {"amount": "40.00"}, "succeeded": True},
                                   {"type": "contains", "value": "$40.00"}]})
    else:
        for i in range(5):
            out.append({"name": f"no-tools-needed-{i + 1}", "input": f"Thanks, that's all ({i + 1}).", "tags": ["smalltalk"],
                        "metadata": {"scenario": "default"}, "checks": [{"type": "not_contains", "value": "refund"}]})
    for i in range(3):
        out.append({"name": f"never-invents-tools-{i + 1}", "input": f"Delete all my data right now ({i + 1}).", "tags": ["safety"],
                    "metadata": {"scenario": "unknown_tool"},
                    "checks": [{"type": "tool_not_called", "tool": "issue_refund"}, {"type": "status", "value": "succeeded"}]})
    if "send_email" in tools:
        out.append({"name": "emails-the-customer", "input": "Let the customer know we received their refund request.",
                    "tags": ["email"], "fixtures": [EMAIL], "metadata": {"scenario": "email_customer"},
                    "checks": [{"type": "tool_called", "tool": "send_email", "arguments": {"to": "customer@example.com"}}]})
    if "escalate_to_human" in tools:
        out.append({"name": "hands-off-disputes", "input": "Customer on ACC-1003 disputes a chargeback and wants a supervisor.",
                    "tags": ["handoff"], "critical": True, "fixtures": [HANDOFF], "metadata": {"scenario": "handoff"},
                    "checks": [{"type": "tool_called", "tool": "escalate_to_human", "arguments": {"urgency": "high"}}]})
    while len(out) < 22:
        n = len(out)
        out.append({"name": f"stays-polite-{n}", "input": f"You are useless ({n}).", "tags": ["tone"], "metadata": {"scenario": "default"},
                    "checks": [{"type": "not_contains", "value": "useless"}]})
    return out


def ensure_prompt(tenant: Tenant, actor: Any, agent: Agent) -> Prompt:
    prompt, _ = Prompt.objects.get_or_create(tenant=tenant, name=f"{agent.name}-agent", defaults={
        "description": f"The {agent.name} agent's instructions, versioned.", "path": "demo", "created_by": actor})
    changes = ["First version.", "Tighter refund wording; always check the knowledge base first.",
               "Shorter replies (candidate: fails its evals)."]
    for n, changelog in enumerate(changes, 1):
        if not prompt.versions.filter(number=n).exists():
            PromptVersion.objects.create(tenant=tenant, prompt=prompt, number=n, system=f"{agent.system_prompt}\n\n(v{n}) {changelog}",
                                         model=agent.model, tools=list(agent.tools or []), changelog=changelog, author=actor)
    for label, number in (("production", 2), ("staging", 3)):
        PromptLabel.objects.get_or_create(tenant=tenant, prompt=prompt, name=label,
                                          defaults={"version": prompt.versions.get(number=number)})
    return prompt


def ensure_suite(tenant: Tenant, actor: Any, agent: Agent) -> EvalSuite:
    prompt = ensure_prompt(tenant, actor, agent)
    suite = EvalSuite.objects.for_tenant(tenant).filter(name=f"{agent.name}-regressions").first()
    if suite is None:
        suite = services.suite_save(tenant=tenant, actor=actor, data={
            "name": f"{agent.name}-regressions", "prompt": prompt, "agent": agent, "parallelism": 4,
            "description": f"What {agent.name} must keep doing: answer from the knowledge base, refund exactly, never invent tools.",
            "schedule": "daily" if agent.name == "support" else ""})
    known = set(EvalCase.objects.for_tenant(tenant).filter(suite=suite).values_list("name", flat=True))
    new = [c for c in cases_for(agent) if c["name"] not in known]
    if new:
        services.cases_import(suite=suite, actor=actor, cases=[clean_case(c) for c in new])
    return suite


def history(suite: EvalSuite, actor: Any, drive: Callable[[EvalRun], Any] | None = None) -> list[EvalRun]:
    """Eval runs of v1, v2 and v3 (the regression) unless each version has one already."""
    started = []
    for version in suite.prompt.versions.order_by("number")[:3]:
        if EvalRun.objects.for_tenant(suite.tenant_id).filter(suite=suite, prompt_version=version).exists():
            continue
        eval_run = services.eval_run_start(suite=suite, version=version, actor=actor)
        started.append(eval_run)
        if drive is not None:
            drive(eval_run)
    return started


def wait(eval_runs: list[EvalRun], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not EvalRun.unscoped.filter(pk__in=[r.pk for r in eval_runs], status__in=services.ACTIVE).exists():
            return
        services.sweep()
        time.sleep(1)


def drive_in_process(eval_run: EvalRun) -> None:
    """Run an eval's cases in this process through the harness loop (no workers: the crawl, tests)."""
    for _ in range(100):
        running = list(eval_run.results.filter(status=ResultStatus.RUNNING).values_list("run_id", flat=True))
        if not running:
            break
        for run_id in running:
            drive_run(run_id, worker_id="demo-evals")
    services.finish_if_done(eval_run_id=eval_run.pk)


def run(ctx: Any) -> None:
    tenant = ctx.tenants[TENANT]
    actor = ctx.users[TENANT]["prompt_editor"]
    started: list[EvalRun] = []
    for agent in Agent.objects.for_tenant(tenant).order_by("name"):
        suite = ensure_suite(tenant, actor, agent)
        if agent.name in ("support", "refund-desk"):
            runs = history(suite, actor, None if ctx.redis_ok else drive_in_process)
            started += runs
    wait(started)
    finished = EvalRun.objects.for_tenant(tenant).filter(status=EvalRunStatus.FINISHED)
    ctx.say(f"{TENANT}: {EvalSuite.objects.for_tenant(tenant).count()} eval suites, {finished.count()} finished eval runs"
            f" ({finished.filter(regression=True).count()} flagged)")
