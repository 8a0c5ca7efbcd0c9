"""Writes for evals: suites and cases, starting an eval run, dispatching its cases as runs,
scoring each finished case, finishing the eval run, and drift.

How an eval run executes: :func:`eval_run_start` records one pending ``EvalResult`` per case, then
:func:`dispatch` turns pending results into ordinary runs (``metadata["eval"]`` marks them and
carries the fixtures), at most the suite's parallelism at once and never past the tenant's
concurrent-run limit, each pinned to the eval run's prompt version and enqueued on the ``runs``
queue like any run. When a case's run ends, the harness tells :func:`on_run_finished` (registered
in ``EvalsConfig.ready()``) in the worker that finished it: the case is scored, the progress
counters move, the next pending case is dispatched, and the last one finishes the eval run.
:func:`sweep` (a periodic job) repairs whatever a crash between those steps left behind.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.http import Http404
from django.utils import timezone

from agentops.evals import scoring
from agentops.evals.definitions import case_problems, clean_case
from agentops.evals.models import (
    SCHEDULE_SECONDS,
    EvalAlert,
    EvalCase,
    EvalResult,
    EvalRun,
    EvalRunStatus,
    EvalSuite,
    ResultStatus,
    Trigger,
)
from agentops.harness import fixtures
from agentops.prompts.models import PromptLabel, PromptVersion
from agentops.tools.registry import all_tools
from budgets.services import effective_policy
from runs.models import TERMINAL_STATUSES, Run, RunStatus
from runs.services import enqueue_run, run_cancel
from tenants.access import parse_id
from tenants.models import Role, Tenant
from tenants.services import audit_record
from tenants.webhooks import webhook_send

log = logging.getLogger(__name__)

REGRESSION_POINTS = Decimal(10)
ALERT_POINTS = Decimal(20)
ACTIVE = (EvalRunStatus.QUEUED, EvalRunStatus.RUNNING)


class EvalProblems(ValidationError):
    """A definition is invalid; ``problems`` lists every problem (the views and API answer 400)."""
    def __init__(self, problems: list[str]):
        super().__init__(problems)
        self.problems = problems


def known_tools(tenant: Any = None) -> list[str]:
    """Tool names a case may name: the built-ins, and the tenant's own MCP tools when it is given."""
    return sorted(all_tools(tenant))


# --- suites and cases ---------------------------------------------------------------------------


@transaction.atomic
def suite_save(*, tenant: Tenant, actor: Any, data: dict[str, Any], suite: EvalSuite | None = None) -> EvalSuite:
    """Create or edit a suite (name, description, prompt, agent, schedule, parallelism)."""
    suite = suite or EvalSuite(tenant=tenant, created_by=actor)
    before = {"name": suite.name, "schedule": suite.schedule} if suite.pk else None
    for field in ("name", "description", "prompt", "agent", "schedule", "parallelism"):
        if field in data:
            setattr(suite, field, data[field])
    if suite.prompt.tenant_id != tenant.pk or suite.agent.tenant_id != tenant.pk:
        raise ValidationError("Unknown prompt or agent.")
    suite.full_clean()
    suite.save()
    audit_record(tenant=tenant, actor=actor, action="eval_suite.save", target=suite, before=before,
                 after={"name": suite.name, "schedule": suite.schedule, "prompt": suite.prompt.name, "agent": suite.agent.name})
    return suite


@transaction.atomic
def case_save(*, suite: EvalSuite, actor: Any, data: Any, case: EvalCase | None = None, source_run_id: int | None = None) -> EvalCase:
    problems = case_problems(data, known_tools=known_tools(suite.tenant_id))
    if problems:
        raise EvalProblems(problems)
    fields = clean_case(data)
    clash = EvalCase.objects.for_tenant(suite.tenant_id).filter(suite=suite, name=fields["name"])
    if case is not None:
        clash = clash.exclude(pk=case.pk)
    if clash.exists():
        raise EvalProblems([f"case.name: this suite already has a case named {fields['name'][:100]!r}"])
    case = case or EvalCase(tenant_id=suite.tenant_id, suite=suite, source_run_id=source_run_id)
    for key, value in fields.items():
        setattr(case, key, value)
    case.save()
    audit_record(tenant=suite.tenant, actor=actor, action="eval_case.save", target=case, after={"suite": suite.name, "name": case.name})
    return case


@transaction.atomic
def case_delete(*, case: EvalCase, actor: Any) -> None:
    audit_record(tenant=case.suite.tenant, actor=actor, action="eval_case.delete", target=case, before={"name": case.name})
    case.delete()


@transaction.atomic
def cases_import(*, suite: EvalSuite, actor: Any, cases: list[dict[str, Any]], replace: bool = False) -> dict[str, int]:
    """Import parsed, valid cases (see evals.definitions.parse_jsonl): new names are added, known ones updated."""
    existing = {c.name: c for c in EvalCase.objects.for_tenant(suite.tenant_id).filter(suite=suite)}
    created = updated = 0
    for fields in cases:
        case = existing.get(fields["name"])
        if case is None:
            case = EvalCase(tenant_id=suite.tenant_id, suite=suite)
            created += 1
        else:
            updated += 1
        for key, value in fields.items():
            setattr(case, key, value)
        case.save()
    deleted = 0
    if replace:
        keep = {c["name"] for c in cases}
        deleted, _ = EvalCase.objects.for_tenant(suite.tenant_id).filter(suite=suite).exclude(name__in=keep).delete()
    audit_record(tenant=suite.tenant, actor=actor, action="eval_case.import", target=suite,
                 after={"created": created, "updated": updated, "deleted": deleted})
    return {"created": created, "updated": updated, "deleted": deleted}


def case_from_run(*, suite: EvalSuite, actor: Any, run: Run, name: str) -> EvalCase:
    """"Add this run to a suite": its input becomes the case's, each tool call's result a fixture."""
    fixtures = []
    for call in run.tool_calls.filter(status__in=("succeeded", "error")).order_by("created_at", "id"):
        fixtures.append({"tool": call.tool_name, "arguments": call.arguments, "result": call.result, "is_error": call.is_error})
    checks: list[dict[str, Any]] = []
    if run.status == RunStatus.SUCCEEDED:
        checks.append({"type": "status", "value": "succeeded"})
    for name_ in sorted({f["tool"] for f in fixtures}):
        checks.append({"type": "tool_called", "tool": name_})
    data: dict[str, Any] = {"name": name, "input": run.input, "checks": checks, "fixtures": fixtures, "tags": ["from-run"]}
    scenario = (run.metadata or {}).get("scenario") if isinstance(run.metadata, dict) else None
    if isinstance(scenario, str):
        data["metadata"] = {"scenario": scenario}
    return case_save(suite=suite, actor=actor, data=data, source_run_id=run.pk)


# --- eval runs ----------------------------------------------------------------------------------


def resolve_version(*, suite: EvalSuite, label: str | None = None, version: int | None = None) -> tuple[PromptVersion, str]:
    """The exact version an eval run tests: by number, or the one a label points at now."""
    versions = PromptVersion.objects.for_tenant(suite.tenant_id).filter(prompt_id=suite.prompt_id)
    if version is not None:
        found = versions.filter(number=version).first()
        if found is None:
            raise ValidationError(f"{suite.prompt.name} has no version {version}.")
        return found, ""
    name = label or "production"
    row = PromptLabel.objects.for_tenant(suite.tenant_id).filter(prompt_id=suite.prompt_id, name=name).select_related("version").first()
    if row is None or row.version is None:
        raise ValidationError(f"The label {name!r} of {suite.prompt.name} points at no version.")
    return row.version, name


@transaction.atomic
def eval_run_start(*, suite: EvalSuite, version: PromptVersion, actor: Any = None, trigger: str = Trigger.MANUAL,
                   label: str = "") -> EvalRun:
    if version.tenant_id != suite.tenant_id or version.prompt_id != suite.prompt_id:
        raise ValidationError("That version is not a version of this suite's prompt.")
    cases = list(EvalCase.objects.for_tenant(suite.tenant_id).filter(suite=suite).order_by("name"))
    if not cases:
        raise ValidationError("This suite has no cases yet.")
    eval_run = EvalRun.objects.create(
        tenant_id=suite.tenant_id, suite=suite, prompt_version=version, label=label, model=version.model or suite.agent.model,
        trigger=trigger, total=len(cases), created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    EvalResult.objects.bulk_create([
        EvalResult(tenant_id=suite.tenant_id, eval_run=eval_run, case=c, case_name=c.name, critical=c.critical, checks=c.checks)
        for c in cases
    ])
    audit_record(tenant=suite.tenant, actor=actor if getattr(actor, "is_authenticated", False) else None, action="eval_run.start",
                 target=eval_run, after={"suite": suite.name, "version": version.number, "trigger": trigger, "cases": len(cases)})
    dispatch(eval_run_id=eval_run.pk)
    return eval_run


def dispatch(*, eval_run_id: int) -> int:
    """Start pending cases as runs while slots are free. Returns how many were started."""
    with transaction.atomic():
        eval_run = EvalRun.unscoped.select_for_update().select_related("suite", "suite__agent", "prompt_version").filter(pk=eval_run_id).first()
        if eval_run is None or eval_run.status not in ACTIVE:
            return 0
        suite = eval_run.suite
        in_flight = EvalResult.unscoped.filter(eval_run_id=eval_run_id, status=ResultStatus.RUNNING).count()
        active = Run.unscoped.filter(tenant_id=eval_run.tenant_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count()
        limit = int(effective_policy(tenant=suite.tenant).max_concurrent_runs)
        slots = min(suite.parallelism - in_flight, limit - active)
        if slots <= 0:
            return 0
        pending = list(EvalResult.unscoped.select_related("case").filter(eval_run_id=eval_run_id, status=ResultStatus.PENDING)
                       .order_by("id")[:slots])
        if eval_run.status == EvalRunStatus.QUEUED:
            eval_run.status, eval_run.started_at = EvalRunStatus.RUNNING, timezone.now()
            eval_run.save(update_fields=["status", "started_at"])
        version = eval_run.prompt_version
        for result in pending:
            case = result.case
            if case is None:  # deleted after the eval run started: scored as failed, never run
                _score(result, None)
                continue
            metadata = {k: v for k, v in (case.metadata or {}).items() if k != "scenario_for_version"}
            # Scripted mode only: the scenario standing in for the model's answer to this version.
            by_version = (case.metadata or {}).get("scenario_for_version")
            if isinstance(by_version, dict) and isinstance(by_version.get(str(version.number)), str):
                metadata["scenario"] = by_version[str(version.number)]
            metadata["eval"] = {"eval_run": eval_run.pk, "case": case.pk, "fixtures": case.fixtures}
            run = Run.objects.create(
                tenant_id=eval_run.tenant_id, agent=suite.agent, input=case.input, submitted_by=eval_run.created_by,
                submitter_role=Role.OPERATOR, metadata=metadata, prompt_version_id=version.pk,
                prompt_version_number=version.number, prompt_sha256=version.sha256,
            )
            result.run, result.status = run, ResultStatus.RUNNING
            result.save(update_fields=["run", "status"])
            enqueue_run(run)
        return len(pending)


def on_run_finished(run_id: int, status: str, metadata: Any = None) -> None:
    """The harness's run-finished hook: score the case if this run was one, then keep the eval run going.

    It runs in the worker after every run, so it stays cheap: one indexed lookup for a production
    run, a handful of statements for a case (score, count, dispatch the next only when one waits).
    A production run (no ``eval`` in its metadata) costs nothing: no query at all.
    """
    if fixtures.eval_metadata(metadata) is None:
        return
    result = EvalResult.unscoped.filter(run_id=run_id, status=ResultStatus.RUNNING).select_related("run").first()
    if result is None:
        return
    if not _score_loaded(result):
        return
    if EvalResult.unscoped.filter(eval_run_id=result.eval_run_id, status=ResultStatus.PENDING).exists():
        dispatch(eval_run_id=result.eval_run_id)
    elif EvalRun.unscoped.filter(pk=result.eval_run_id, done__gte=F("total")).exists():
        finish_if_done(eval_run_id=result.eval_run_id)


def score_result(*, result_id: int) -> bool:
    """Score one case whose run has ended (the judge's model call happens here, outside any transaction)."""
    result = EvalResult.unscoped.select_related("run").filter(pk=result_id).first()
    if result is None or result.status == ResultStatus.SCORED:
        return False
    return _score_loaded(result)


def _score_loaded(result: EvalResult) -> bool:
    if result.run is None or result.run.status not in TERMINAL_STATUSES:
        return False
    scored = scoring.score(result.run, result.checks)
    with transaction.atomic():
        return _score(result, scored)


def _score(result: EvalResult, scored: scoring.Scored | None) -> bool:
    """Record the verdicts once (the status condition in the UPDATE decides a race) and count them."""
    fields: dict[str, Any] = {"status": ResultStatus.SCORED, "scored_at": timezone.now()}
    if scored is None:
        fields.update(passed=False, verdicts=[{"type": "case", "name": "case deleted", "passed": False,
                                               "reason": "The case was deleted before it ran.", "score": None}])
    else:
        fields.update(passed=scored.passed, verdicts=[v.as_dict() for v in scored.verdicts], output=scored.output,
                      tool_calls=scored.tool_calls, turns=scored.turns, cost=scored.cost, run_status=scored.run_status)
    if not EvalResult.unscoped.filter(pk=result.pk).exclude(status=ResultStatus.SCORED).update(**fields):
        return False
    for key, value in fields.items():
        setattr(result, key, value)
    EvalRun.unscoped.filter(pk=result.eval_run_id).update(
        done=F("done") + 1, passed=F("passed") + (1 if result.passed else 0), cost=F("cost") + result.cost)
    return True


def finish_if_done(*, eval_run_id: int, now: Any = None) -> bool:
    with transaction.atomic():
        eval_run = EvalRun.unscoped.select_for_update().filter(pk=eval_run_id, status__in=ACTIVE).first()
        if eval_run is None:
            return False
        counts = EvalResult.unscoped.filter(eval_run_id=eval_run_id).aggregate(
            open=Count("id", filter=~Q(status=ResultStatus.SCORED)), passed=Count("id", filter=Q(passed=True)),
            done=Count("id", filter=Q(status=ResultStatus.SCORED)), cost=Sum("cost"))
        if counts["open"]:
            return False
        eval_run.done, eval_run.passed, eval_run.cost = counts["done"], counts["passed"], counts["cost"] or Decimal(0)
        eval_run.pass_rate = (Decimal(eval_run.passed) / eval_run.total).quantize(Decimal("0.0001")) if eval_run.total else Decimal(0)
        eval_run.status, eval_run.finished_at = EvalRunStatus.FINISHED, now or timezone.now()
        eval_run.save()
        _drift(eval_run)
    return True


@transaction.atomic
def eval_run_cancel(*, eval_run: EvalRun, actor: Any) -> EvalRun:
    """Stop an eval run: pending cases never start, running ones are cancelled."""
    locked = EvalRun.objects.for_tenant(eval_run.tenant_id).select_for_update().get(pk=eval_run.pk)
    if locked.status not in ACTIVE:
        return locked
    for result in EvalResult.objects.for_tenant(locked.tenant_id).select_related("run").filter(eval_run=locked, status=ResultStatus.RUNNING):
        if result.run is not None:
            run_cancel(run=result.run, actor=actor)
    locked.status, locked.finished_at = EvalRunStatus.CANCELLED, timezone.now()
    locked.save(update_fields=["status", "finished_at"])
    audit_record(tenant=locked.suite.tenant, actor=actor, action="eval_run.cancel", target=locked)
    return locked


# --- drift --------------------------------------------------------------------------------------


def _drift(eval_run: EvalRun) -> None:
    """Compare a finished run with its baseline: the suite's first finished run of the same version
    (the same prompt answering worse later is drift: a model or tool changed under it), or for a
    version's first run, production's latest. A drop of 10 points flags a regression; 20 raises an
    alert, in-app and by webhook."""
    finished = EvalRun.unscoped.filter(suite_id=eval_run.suite_id, status=EvalRunStatus.FINISHED).exclude(pk=eval_run.pk)
    baseline = finished.filter(prompt_version_id=eval_run.prompt_version_id).order_by("finished_at", "id").first()
    if baseline is None:
        # A version's first run is compared with production's latest: a candidate that regressed.
        production = PromptLabel.unscoped.filter(prompt_id=eval_run.suite.prompt_id, name="production").values_list("version_id", flat=True).first()
        if production and production != eval_run.prompt_version_id:
            baseline = finished.filter(prompt_version_id=production).order_by("-finished_at", "-id").first()
    if baseline is None or baseline.pass_rate is None or eval_run.pass_rate is None:
        return
    drop = ((baseline.pass_rate - eval_run.pass_rate) * 100).quantize(Decimal("0.01"))
    eval_run.baseline, eval_run.drop_points = baseline, drop
    eval_run.regression = drop >= REGRESSION_POINTS
    eval_run.save(update_fields=["baseline", "drop_points", "regression"])
    if drop < ALERT_POINTS or eval_run.trigger != Trigger.SCHEDULE:
        return  # alerts are for drift in production; a candidate's drop is shown, and the gate refuses it
    suite = eval_run.suite
    message = (f"Eval suite {suite.name}: v{eval_run.prompt_version.number} passes {eval_run.pass_pct}% of cases, "
               f"{drop} points below its baseline run {baseline.pk}.")
    try:
        with transaction.atomic():
            EvalAlert.objects.create(tenant_id=eval_run.tenant_id, eval_run=eval_run, message=message[:300])
            EvalRun.unscoped.filter(pk=eval_run.pk).update(alerted=True)
            webhook_send(tenant=suite.tenant, event="evals.regression", payload={
                "text": f"[{suite.tenant.name}] {message}", "tenant": suite.tenant.slug, "suite": suite.name,
                "eval_run": eval_run.pk, "version": eval_run.prompt_version.number, "pass_rate": str(eval_run.pass_rate),
                "baseline_pass_rate": str(baseline.pass_rate), "drop_points": str(drop)})
    except IntegrityError:
        return


def schedule_due(*, now: Any = None) -> int:
    """Start an eval run of every scheduled suite whose interval has passed, against ``production``."""
    now = now or timezone.now()
    started = 0
    for suite in EvalSuite.unscoped.exclude(schedule="").select_related("prompt", "agent", "tenant"):
        every = SCHEDULE_SECONDS.get(suite.schedule)
        if every is None or (suite.last_scheduled_at and suite.last_scheduled_at > now - timedelta(seconds=every)):
            continue
        claimed = EvalSuite.unscoped.filter(pk=suite.pk, last_scheduled_at=suite.last_scheduled_at).update(last_scheduled_at=now)
        if not claimed:
            continue  # another scheduler took it
        try:
            version, label = resolve_version(suite=suite, label="production")
            eval_run_start(suite=suite, version=version, trigger=Trigger.SCHEDULE, label=label)
            started += 1
        except ValidationError as exc:
            log.info("scheduled eval of suite %s not started: %s", suite.pk, exc.messages[0] if exc.messages else exc)
    return started


def sweep(*, now: Any = None) -> dict[str, int]:
    """The periodic repair: score cases whose run ended unseen, dispatch, finish, and start scheduled runs."""
    out = {"scored": 0, "dispatched": 0, "finished": 0, "scheduled": 0}
    stuck = EvalResult.unscoped.filter(status=ResultStatus.RUNNING, run__status__in=list(TERMINAL_STATUSES)).values_list("pk", flat=True)[:500]
    for pk in stuck:
        out["scored"] += int(score_result(result_id=pk))
    for pk in EvalRun.unscoped.filter(status__in=ACTIVE).values_list("pk", flat=True)[:200]:
        out["dispatched"] += dispatch(eval_run_id=pk)
        out["finished"] += int(finish_if_done(eval_run_id=pk, now=now))
    out["scheduled"] = schedule_due(now=now)
    return out


@transaction.atomic
def alert_acknowledge(*, tenant: Tenant, alert_id: object, actor: Any) -> None:
    pk = parse_id(alert_id)
    updated = EvalAlert.objects.for_tenant(tenant).filter(pk=pk, acknowledged_at__isnull=True).update(acknowledged_at=timezone.now()) if pk else 0
    alert = EvalAlert.objects.for_tenant(tenant).filter(pk=pk or 0).first()
    if alert is None:
        raise Http404("No such alert.")
    if updated:
        audit_record(tenant=tenant, actor=actor, action="eval_alert.acknowledge", target=alert)
