"""Crash recovery with real ``rqworker`` processes on PostgreSQL and Redis.

These are the tests the product's "nothing lost" promise rests on: kill -9 mid-run, the same run
enqueued on two workers, and a SIGTERM during a deploy.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import django_rq
import pytest
from rq.registry import FinishedJobRegistry

from agentops.harness.loop import worker_identity
from agentops.toolbox.models import Refund, SentEmail
from runs.models import Message, Run, RunStatus, ToolCall
from runs.services import enqueue_run_now, reconcile_runs
from tests.runtime.conftest import assert_log_consistent, make_run
from tests.workers import kill_tree, start_worker, stop, wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Every model step is slow (the scripted API sleeps), so a worker is reliably mid-run when killed.
SLOW_SIDE_EFFECTS = {
    "description": "Refund, then e-mail, then answer; each model call takes 400 ms.",
    "steps": [
        {"delay_ms": 400, "content": [{"type": "tool_use", "name": "issue_refund", "input": {
            "account_id": "ACC-1001", "transaction_id": "TX-5001", "amount": "40.00", "reason": "Duplicate charge"}}]},
        {"delay_ms": 400, "content": [{"type": "tool_use", "name": "send_email", "input": {
            "to": "customer@example.com", "subject": "Your refund", "body": "We refunded $40.00."}}]},
        {"delay_ms": 400, "content": [{"type": "tool_use", "name": "check_policy", "input": {"policy": "refund"}}]},
        {"delay_ms": 400, "content": [{"type": "text", "text": "Done: refunded and told the customer."}]},
    ],
}


@pytest.fixture
def slow_scenario(tmp_path: Path) -> str:
    path = tmp_path / "slow_side_effects.json"
    path.write_text(json.dumps(SLOW_SIDE_EFFECTS))
    return str(path)


def _done(run: Run) -> bool:
    run.refresh_from_db()
    return run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CAPPED, RunStatus.CANCELLED)


def test_kill_9_mid_run_loses_nothing_and_repeats_no_side_effect(agent, slow_scenario):
    run = make_run(agent, slow_scenario)
    victim = start_worker("runs")
    try:
        enqueue_run_now(run)
        # Kill as soon as the refund (the first side effect) has happened and been recorded, mid-run.
        # (A kill between the tool's start and that record is an unknown outcome: test_money_workers.)
        wait_for(lambda: ToolCall.objects.filter(run_id=run.pk, tool_name="issue_refund", status="succeeded").exists(),
                 timeout=60, message="the refund")
        kill_tree(victim)
        victim.wait(timeout=10)
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING and run.lease_owner  # the dead worker's lease is still there
        with workers(1, "runs"):
            # The reconciler takes over once the lease expires (RUN_LEASE_SECONDS=5 in tests).
            wait_for(lambda: reconcile_runs()["expired_leases"] >= 1 or _done(run), timeout=30, interval=0.5, message="lease expiry")
            wait_for(lambda: _done(run), timeout=60, message="the run to finish")
    finally:
        stop(victim)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert run.attempt >= 2
    assert Refund.objects.filter(run_id=run.pk).count() == 1
    assert SentEmail.objects.filter(run_id=run.pk).count() == 1
    assert ToolCall.objects.filter(run=run).count() == 3
    assert_log_consistent(run)


def test_the_same_run_enqueued_twice_on_two_workers_executes_once(agent, slow_scenario):
    run = make_run(agent, slow_scenario)
    with workers(2, "runs"):
        enqueue_run_now(run)
        enqueue_run_now(run)
        wait_for(lambda: _done(run), timeout=60, message="the run to finish")
        # Both jobs must have run before the counts below mean anything (a sleep would only hope so).
        finished = FinishedJobRegistry(queue=django_rq.get_queue("runs"))
        wait_for(lambda: len(finished) == 2, timeout=30, message="both jobs to finish")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_type, run.error_message)
    assert run.attempt == 1  # the second job never got the lease
    assert Message.objects.filter(run=run).count() == 8
    assert Refund.objects.filter(run_id=run.pk).count() == 1
    from budgets.models import SpendEntry

    assert SpendEntry.objects.filter(run_id=run.pk).count() == 4
    assert_log_consistent(run)


def test_sigterm_hands_the_run_back_after_the_current_step(agent, slow_scenario):
    run = make_run(agent, slow_scenario)
    first = start_worker("runs")
    try:
        enqueue_run_now(run)
        wait_for(lambda: Message.objects.filter(run=run).count() >= 2, timeout=60, message="the first turn")
        os.killpg(first.pid, signal.SIGTERM)  # a deploy: warm shutdown
        first.wait(timeout=30)  # exits after the current step, not after the whole run
    finally:
        stop(first)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.lease_owner == "", run.status
    assert run.events.filter(type="handed_back").exists()
    with workers(1, "runs"):
        wait_for(lambda: _done(run), timeout=60, message="the run to finish on the next worker")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert Refund.objects.filter(run_id=run.pk).count() == 1
    assert_log_consistent(run)


def test_queued_run_without_a_job_is_recovered(agent):
    """Commit-then-crash: the row committed but the enqueue never happened."""
    run = make_run(agent, "default")
    Run.objects.filter(pk=run.pk).update(updated_at=run.created_at.replace(year=2020))
    with workers(1, "runs"):
        assert reconcile_runs()["requeued"] == 1
        wait_for(lambda: _done(run), timeout=60, message="the recovered run")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def _job_pid(worker_class: str) -> tuple[int, int]:
    """(the worker's pid, the pid a job ran in) on a real worker of ``worker_class``."""
    queue = django_rq.get_queue("default")
    job = queue.enqueue(os.getpid)  # the job reports the process it ran in
    proc = start_worker("default", worker_class=worker_class)
    try:
        wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=60, message="the job")
        return proc.pid, int(job.return_value())
    finally:
        stop(proc)


def test_agent_worker_runs_jobs_in_its_own_process():
    """No work horse forked per job (issue 14): the job's pid is the worker's."""
    worker_pid, job_pid = _job_pid("agentops.worker.AgentWorker")
    assert job_pid == worker_pid


def test_forking_agent_worker_still_forks_a_work_horse_per_job():
    worker_pid, job_pid = _job_pid("agentops.worker.ForkingAgentWorker")
    assert job_pid != worker_pid


def test_every_job_leases_runs_under_an_owner_of_its_own():
    """Jobs of one worker process share a pid: the lease owner id must still tell them apart, or a
    reconciler's job and a retry chain of the same run could both hold its lease at once."""
    ids = {worker_identity() for _ in range(50)}
    assert len(ids) == 50 and all(i.rsplit(":", 2)[1] == str(os.getpid()) for i in ids)


def test_a_job_over_its_timeout_is_stopped_in_process_and_the_worker_carries_on():
    """RQ's death penalty (SIGALRM) still ends a job that outlives its timeout when no horse is forked."""
    queue = django_rq.get_queue("default")
    slow = queue.enqueue(time.sleep, 30, job_timeout=1)
    after = queue.enqueue(os.getpid)
    proc = start_worker("default")
    try:
        wait_for(lambda: slow.get_status(refresh=True) == "failed", timeout=60, message="the slow job to time out")
        assert "JobTimeoutException" in (slow.latest_result().exc_string or "")
        wait_for(lambda: after.get_status(refresh=True) == "finished", timeout=30, message="the next job")
        assert int(after.return_value()) == proc.pid and proc.poll() is None
    finally:
        stop(proc)
