"""Writes for runs and agents: submit, cancel, pause, resume, kill switches, agents and grants.

Each is keyword-only, one transaction, writes an audit row where a person acted, and enqueues
jobs only after commit.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import django_rq
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from agentops.harness import hooks
from agentops.harness.prompting import ResolvedPrompt, render_first_message
from agentops.jobs import enqueue, enqueue_in, redis_available
from agentops.memory.facts import MAX_SUBJECT, clean_subject
from agentops.tools.registry import all_tools, get_tool
from budgets.services import effective_policy, reconcile_reservations
from runs.jobs import judge_job, run_job
from runs.models import (
    Agent,
    Message,
    Run,
    RunEvent,
    RunStatus,
    ToolCall,
    ToolCallStatus,
    ToolGrant,
    agent_prompt_model,
)
from tenants.models import ApiKey, Tenant
from tenants.services import audit_record

MAX_INPUT_CHARS = 100_000


class RunRefused(Exception):
    """The run cannot be accepted now (kill switch, concurrency limit)."""
    def __init__(self, type_: str, message: str):
        super().__init__(message)
        self.type = type_


def enqueue_run(run: Run, *, delay_s: float = 0) -> None:
    """Queue a job that drives ``run``; always after the current transaction commits."""
    if delay_s > 0:
        enqueue_in(delay_s, run_job, run.pk, queue="runs", timeout=settings.RUN_JOB_TIMEOUT)
    else:
        enqueue(run_job, run.pk, queue="runs", timeout=settings.RUN_JOB_TIMEOUT)


def _check_input(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("input must be a non-empty string.")
    if len(text) > MAX_INPUT_CHARS:
        raise ValidationError(f"input is longer than {MAX_INPUT_CHARS} characters.")
    if "\x00" in text:
        raise ValidationError("input contains NUL bytes.")
    return text


@transaction.atomic
def run_submit(
    *, tenant: Tenant, agent: Agent, input: str, submitted_by: Any = None, api_key: ApiKey | None = None,
    role: str, metadata: dict[str, Any] | None = None, prompt: ResolvedPrompt | None = None, playground: bool = False,
    variables: dict[str, Any] | None = None,
) -> Run:
    """``prompt``: pin the run to this prompt version now (the try-it panel) instead of at its first
    model call from the agent's label; ``playground`` marks it as not a production run. ``variables``:
    render the version's first-message template as the input (the version is then pinned now, so the
    message and the version the run uses agree); ``input`` must then be empty."""
    if agent.tenant_id != tenant.pk:
        raise Agent.DoesNotExist
    if variables is not None:
        prompt, input = _render_input(agent, prompt, variables, input)
    text = _check_input(input)
    metadata = _check_metadata(metadata or {})
    if tenant.runs_disabled or agent.runs_disabled:
        raise RunRefused("kill_switch", "New runs are disabled for this " + ("tenant." if tenant.runs_disabled else "agent."))
    # Lock the tenant row: concurrent submissions count active runs one at a time.
    Tenant.objects.select_for_update().filter(pk=tenant.pk).first()
    active = Run.objects.for_tenant(tenant).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count()
    limit = _concurrency_limit(tenant)
    if active >= limit:
        raise RunRefused("concurrency_limit", f"{active} runs are already active; this tenant's limit is {limit}.")
    run = Run.objects.create(
        tenant=tenant, agent=agent, input=text, submitted_by=submitted_by if getattr(submitted_by, "is_authenticated", False) else None,
        api_key=api_key, submitter_role=role, metadata=metadata, playground=playground,
        prompt_version_id=prompt.version_id if prompt else None, prompt_version_number=prompt.version_number if prompt else None,
        prompt_sha256=(prompt.sha256 or "") if prompt else "",
    )
    RunEvent.objects.create(tenant=tenant, run=run, type="status", data={"status": RunStatus.QUEUED})
    enqueue_run(run)
    return run


def _render_input(agent: Agent, prompt: ResolvedPrompt | None, variables: dict[str, Any], input: str) -> tuple[ResolvedPrompt, str]:
    if not isinstance(variables, dict):
        raise ValidationError("variables must be an object of names to strings.")
    resolved = prompt or agent.resolve_prompt()
    if not resolved.first_message:
        raise ValidationError("variables were given but this agent's prompt version has no first-message template.")
    if input and input.strip():
        raise ValidationError("Give either input or variables: with variables the first message is the rendered template.")
    try:
        return resolved, render_first_message(resolved, variables)
    except ValueError as exc:  # VariablesMismatch lists the missing and undeclared names
        raise ValidationError(str(exc)) from exc


def _check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """A scenario may only be chosen by name: the scripted API also reads paths, which are for tests."""
    scenario = metadata.get("scenario")
    if scenario is not None:
        # Here, not at the top: the scenario files module imports the anthropic SDK (0.3-0.9 s), which web
        # processes otherwise never load.
        from agentops.llm.scenario import scenario_names

        if not isinstance(scenario, str) or scenario not in scenario_names():
            raise ValidationError("Unknown scenario.")
    # The key memory keeps facts under (agentops.memory): refused here rather than silently ignored at recall.
    if "subject" in metadata and clean_subject(metadata["subject"]) != metadata["subject"]:
        raise ValidationError(f"metadata.subject must be a string of 1 to {MAX_SUBJECT} characters, without surrounding spaces.")
    return metadata


def _concurrency_limit(tenant: Tenant) -> int:
    """The tenant's max concurrent runs: its override, else its tier's."""
    return int(effective_policy(tenant=tenant).max_concurrent_runs)


def log_close_dangling(*, run: Run, error_type: str, message: str) -> bool:
    """Answer every unanswered tool_use of the last assistant turn, so a stopped run's log stays valid.

    Calls that already finished keep their recorded result (from the idempotency ledger); the
    rest get an ``is_error`` result saying they were not executed. Call it only while no worker
    holds the run (or from the worker that does).
    """
    last = Message.objects.for_tenant(run.tenant_id).filter(run=run).order_by("-seq").first()
    if last is None or last.role != "assistant":
        return False
    uses = [b for b in last.content if b.get("type") == "tool_use"]
    if not uses:
        return False
    calls = {c.tool_use_id: c for c in ToolCall.objects.for_tenant(run.tenant_id).filter(run=run, tool_use_id__in=[b["id"] for b in uses])}
    finished = {ToolCallStatus.SUCCEEDED, ToolCallStatus.ERROR, ToolCallStatus.REFUSED, ToolCallStatus.REJECTED}
    results = []
    for block in uses:
        call = calls.get(block["id"])
        if call is not None and call.status in finished:
            result = {"type": "tool_result", "tool_use_id": block["id"], "content": call.result if isinstance(call.result, str) else json.dumps(call.result)}
            if call.is_error:
                result["is_error"] = True
        elif call is not None and call.status in (ToolCallStatus.STARTED, ToolCallStatus.OUTCOME_UNKNOWN):
            # Cut off by a crash: it may have taken effect, so never claim it was not executed.
            content = json.dumps({"error": {"type": "outcome_unknown", "message": "This call was cut off by a crash and may or may not have "
                                            f"taken effect; it was not repeated. {message}"}})
            result = {"type": "tool_result", "tool_use_id": block["id"], "content": content, "is_error": True}
            ToolCall.objects.for_tenant(run.tenant_id).filter(pk=call.pk).update(
                status=ToolCallStatus.ERROR, result=content, is_error=True, error_class="outcome_unknown", finished_at=timezone.now())
        else:
            content = json.dumps({"error": {"type": error_type, "message": message}})
            result = {"type": "tool_result", "tool_use_id": block["id"], "content": content, "is_error": True}
            if call is not None:
                ToolCall.objects.for_tenant(run.tenant_id).filter(pk=call.pk).update(
                    status=ToolCallStatus.REFUSED, result=content, is_error=True, error_class=error_type, finished_at=timezone.now())
        results.append(result)
    Message.objects.create(tenant_id=run.tenant_id, run=run, seq=last.seq + 1, role="user", content=results)
    return True


def _locked(run: Run) -> Run:
    return Run.objects.for_tenant(run.tenant_id).select_for_update().get(pk=run.pk)


@transaction.atomic
def run_cancel(*, run: Run, actor: Any = None, actor_key: ApiKey | None = None) -> Run:
    """Cancel a run. One that no worker holds — queued (also while it waits out a reschedule
    backoff), awaiting approval, paused, or running under a lease that expired — is cancelled now:
    its pending tool_use answered, its escalations closed, its open reservations reconciled, and
    the job still scheduled for it later finds it terminal and does nothing. A run a worker holds
    is cancelled by that worker before its next model call (or instead of re-queueing it).
    """
    run = _locked(run)
    if run.is_terminal:
        return run
    now = timezone.now()
    expired = run.lease_expires_at is not None and run.lease_expires_at <= now
    held = run.status == RunStatus.RUNNING and bool(run.lease_owner) and not expired
    if held:
        run.cancel_requested = True
        run.save(update_fields=["cancel_requested", "updated_at"])
    else:
        # Clearing the lease fences out a worker that outlived its lease: its next write fails.
        run.status, run.outcome, run.finished_at, run.cancel_requested = RunStatus.CANCELLED, "cancelled", now, True
        run.lease_owner, run.lease_expires_at, run.not_before = "", None, None
        run.save(update_fields=["status", "outcome", "finished_at", "cancel_requested", "lease_owner", "lease_expires_at",
                                "not_before", "updated_at"])
        log_close_dangling(run=run, error_type="run_cancelled", message="Not executed: the run was cancelled.")
        reconcile_reservations(run_id=run.pk)
        hooks.escalation_store().cancel_pending(run=run, now=now)
        RunEvent.objects.create(tenant_id=run.tenant_id, run=run, type="status", data={"status": RunStatus.CANCELLED, "outcome": "cancelled"})
    audit_record(tenant=run.tenant, actor=actor, actor_key=actor_key, action="run.cancel", target=run)
    return run


@transaction.atomic
def run_pause(*, run: Run, actor: Any = None) -> Run:
    run = _locked(run)
    if run.is_terminal or run.status == RunStatus.PAUSED:
        return run
    if run.status == RunStatus.RUNNING and run.lease_owner:
        run.pause_requested = True
        run.save(update_fields=["pause_requested", "updated_at"])
    else:
        run.status, run.outcome = RunStatus.PAUSED, "paused"
        run.save(update_fields=["status", "outcome", "updated_at"])
        RunEvent.objects.create(tenant_id=run.tenant_id, run=run, type="status", data={"status": RunStatus.PAUSED})
    audit_record(tenant=run.tenant, actor=actor, action="run.pause", target=run)
    return run


RESUMABLE = {RunStatus.PAUSED, RunStatus.CAPPED, RunStatus.FAILED, RunStatus.AWAITING_APPROVAL}


@transaction.atomic
def run_resume(*, run: Run, actor: Any = None, reason: str = "resume") -> Run:
    """Put a stopped run back on the queue; it continues from its last persisted turn."""
    run = _locked(run)
    if run.status not in RESUMABLE:
        raise ValidationError(f"A {run.status} run cannot be resumed.")
    if run.tenant.runs_disabled or run.agent.runs_disabled:
        raise RunRefused("kill_switch", "Runs are disabled by a kill switch.")
    if run.outcome == "max_iterations":
        run.iterations = 0  # an explicit resume grants a fresh iteration budget
    run.status, run.pause_requested, run.finished_at, run.outcome = RunStatus.QUEUED, False, None, ""
    run.save(update_fields=["status", "pause_requested", "finished_at", "outcome", "iterations", "updated_at"])
    RunEvent.objects.create(tenant_id=run.tenant_id, run=run, type="status", data={"status": RunStatus.QUEUED, "reason": reason})
    if actor is not None:
        audit_record(tenant=run.tenant, actor=actor, action="run.resume", target=run)
    enqueue_run(run)
    return run


@transaction.atomic
def kill_switch_set(*, tenant: Tenant, actor: Any, enabled: bool, agent: Agent | None = None) -> None:
    """Refuse new runs and pause running ones, for one agent or the whole tenant."""
    target: Any = agent or tenant
    before = target.runs_disabled
    target.runs_disabled = enabled
    target.save(update_fields=["runs_disabled"])
    audit_record(tenant=tenant, actor=actor, action="killswitch." + ("on" if enabled else "off"), target=target,
                 before={"runs_disabled": before}, after={"runs_disabled": enabled})
    if enabled:
        running = Run.objects.for_tenant(tenant).filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
        if agent is not None:
            running = running.filter(agent=agent)
        # Leased runs see the switch before their next model call; the rest pause now.
        running.filter(lease_owner="").update(status=RunStatus.PAUSED, outcome="kill_switch")


AGENT_FIELDS = ["name", "description", "system_prompt", "model", "routing", "fallback_model", "max_tokens", "cache_ttl", "tools",
                "iteration_cap", "repetition_threshold", "wall_clock_limit_s", "task_cost_cap", "memory_token_budget", "runs_disabled", "prompt_id", "prompt_label",
                "flag_policy"]


@transaction.atomic
def agent_save(*, tenant: Tenant, actor: Any, data: dict[str, Any], agent: Agent | None = None) -> Agent:
    known = all_tools(tenant)
    unknown = [t for t in data.get("tools", []) if t not in known]
    if unknown:
        raise ValidationError(f"Unknown tools: {', '.join(unknown)}")
    prompt_id = data.get("prompt_id")
    if prompt_id is not None and not agent_prompt_model().objects.for_tenant(tenant).filter(pk=prompt_id).exists():
        raise ValidationError("No such prompt.")
    before = {f: _jsonable(getattr(agent, f)) for f in AGENT_FIELDS} if agent else None
    if agent is None:
        agent = Agent(tenant=tenant)
    for field in AGENT_FIELDS:
        if field in data:
            setattr(agent, field, data[field])
    agent.full_clean()
    agent.save()
    after = {f: _jsonable(getattr(agent, f)) for f in AGENT_FIELDS}
    audit_record(tenant=tenant, actor=actor, action="agent.create" if before is None else "agent.update", target=agent,
                 before=before, after=after if before is None else {k: v for k, v in after.items() if before.get(k) != v})
    return agent


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


@transaction.atomic
def grant_save(*, tenant: Tenant, actor: Any, tool_name: str, agent: Agent | None, role: str, requires_approval: bool,
               allow: dict[str, Any], approval_over: dict[str, Any]) -> ToolGrant:

    if get_tool(tool_name, tenant) is None:
        raise ValidationError(f"Unknown tool {tool_name!r}.")
    if agent is not None and agent.tenant_id != tenant.pk:
        raise Agent.DoesNotExist
    grant, created = ToolGrant.objects.select_for_update().get_or_create(
        tenant=tenant, tool_name=tool_name, agent=agent, role=role,
        defaults={"requires_approval": requires_approval, "allow": allow, "approval_over": approval_over, "created_by": actor},
    )
    before = None if created else {"requires_approval": grant.requires_approval, "allow": grant.allow, "approval_over": grant.approval_over}
    if not created:
        grant.requires_approval, grant.allow, grant.approval_over = requires_approval, allow, approval_over
        grant.save(update_fields=["requires_approval", "allow", "approval_over"])
    audit_record(tenant=tenant, actor=actor, action="grant.create" if created else "grant.update", target=grant, before=before,
                 after={"tool": tool_name, "agent": agent.name if agent else None, "role": role or None,
                        "requires_approval": requires_approval, "allow": allow, "approval_over": approval_over})
    return grant


@transaction.atomic
def grant_revoke(*, tenant: Tenant, actor: Any, grant_id: int) -> None:
    grant = ToolGrant.objects.for_tenant(tenant).select_for_update().filter(pk=grant_id).first()
    if grant is None:
        raise ToolGrant.DoesNotExist
    audit_record(tenant=tenant, actor=actor, action="grant.revoke", target=grant,
                 before={"tool": grant.tool_name, "agent": grant.agent.name if grant.agent else None, "role": grant.role or None,
                         "requires_approval": grant.requires_approval, "allow": grant.allow})
    grant.delete()


# -- recovery ----------------------------------------------------------------------------

def reconcile_runs(*, queued_grace_s: int | None = None) -> dict[str, int]:
    """Re-enqueue runs a crashed worker left behind, and queued runs that lost their job.

    * ``running`` with an expired lease: the worker died (kill -9, OOM, host loss).
    * ``queued`` for longer than the grace period and due, with no job in the queue: the
      commit-then-crash gap (row committed, enqueue never happened) or a flushed Redis.
    Duplicate jobs are harmless: the lease lets exactly one of them advance the run.
    """
    if queued_grace_s is None:
        queued_grace_s = settings.RECONCILE_QUEUED_GRACE_SECONDS
    now = timezone.now()
    expired = list(Run.unscoped.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True))
    if expired:
        Run.unscoped.filter(pk__in=expired, status=RunStatus.RUNNING, lease_expires_at__lt=now).update(
            status=RunStatus.QUEUED, lease_owner="", lease_expires_at=None
        )
    stale_queued = Run.unscoped.filter(status=RunStatus.QUEUED, updated_at__lt=now - timedelta(seconds=queued_grace_s)).exclude(
        not_before__gt=now
    )
    queued_ids = set(stale_queued.values_list("pk", flat=True)) - set(expired)
    if not redis_available(refresh=True) and not settings.RQ_EAGER_FALLBACK:
        # Nowhere to enqueue: the runs stay queued and the next reconcile after Redis is back sends them.
        return {"expired_leases": len(expired), "requeued": 0}
    pending_jobs = _queued_run_ids()
    requeue = set(expired) | {pk for pk in queued_ids if pk not in pending_jobs}
    for run in Run.unscoped.filter(pk__in=requeue):
        enqueue_run_now(run)
    return {"expired_leases": len(expired), "requeued": len(requeue)}


def enqueue_run_now(run: Run) -> None:
    enqueue(run_job, run.pk, queue="runs", timeout=settings.RUN_JOB_TIMEOUT, on_commit=False)
    Run.unscoped.filter(pk=run.pk).update(updated_at=timezone.now())


def _queued_run_ids() -> set[int]:
    """Run ids that already have a job waiting, scheduled or started in Redis."""
    if not redis_available(refresh=True):
        return set()
    queue = django_rq.get_queue("runs")
    ids: set[int] = set()
    job_ids = list(queue.get_job_ids())
    job_ids += ScheduledJobRegistry(queue=queue).get_job_ids()
    job_ids += StartedJobRegistry(queue=queue).get_job_ids()
    for job in queue.job_class.fetch_many(job_ids, connection=queue.connection):
        if job is not None and job.args:
            ids.add(int(job.args[0]))
    return ids


class RunQueue:
    """The harness's view of the run queue (``agentops.harness.hooks.RunQueue``), registered in ``ready()``."""
    def enqueue_run(self, run: Run, *, delay_s: float = 0) -> None:
        enqueue_run(run, delay_s=delay_s)

    def close_dangling(self, *, run: Run, error_type: str, message: str) -> None:
        log_close_dangling(run=run, error_type=error_type, message=message)

    def enqueue_judge(self, *, run: Run, seq: int, evaluator: str) -> None:
        enqueue(judge_job, run.pk, seq, evaluator, queue="default", timeout=settings.RUN_JOB_TIMEOUT)
