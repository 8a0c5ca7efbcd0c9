"""The loop's statement budget: the store interface between the harness and the runs app must not
add round trips to a step (counted with Django's CaptureQueriesContext on a whole tool-using run)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentops.bench.commits import count_commits
from agentops.harness.durability import relax_commit
from agentops.harness.loop import drive_run
from agentops.harness.store import EventRow, SpanRow
from runs.models import Agent, Message, Run, RunEvent, RunStatus, Span, ToolCall
from runs.store import RunStore
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db

# Plain run / four-step refund run, BEGIN and COMMIT included. A change that adds a statement to a
# step raises these on purpose, with a reason in the commit. Issue 14 lowered them from 27 and 107:
# a turn this job's model call just wrote skips the ledger and escalation reads, a read-only
# idempotent tool writes its ledger row once, in the tool_result turn's transaction, and a step's
# ledger rows, events and spans go to PostgreSQL as one round trip (RunStore.add_rows). Issue 14 again
# (26 -> 22, 79 -> 63): a turn's INSERT, and the lease fence before it, travel in that same round trip
# (RunStore.add_turn). Issue 14, third pass (22 -> 19, 63 -> 51): the model call's settlement travels
# there too, and the fence's UPDATE returns the run's stop flags, so the next step reads none.
PLAIN_RUN_STATEMENTS = 19
# The refund run's measured pass is not all success: the warm-up pass already refunded TX-5001, so its
# issue_refund fails (deterministically) and the failure journal files it: one statement (78 -> 79, before the cuts above).
# A run that meets no failure adds none (the plain run, and tests/memory/test_journal.py).
REFUND_RUN_STATEMENTS = 51


def _count(run) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    return len(ctx.captured_queries)


def test_a_plain_run_stays_within_its_statement_budget(agent):
    _count(make_run(agent, "default"))  # warms the per-process caches (prices, content types)
    assert _count(make_run(agent, "default")) <= PLAIN_RUN_STATEMENTS


def test_a_tool_using_run_stays_within_its_statement_budget(agent):
    _count(make_run(agent, "support_refund"))  # warm-up, as above
    assert _count(make_run(agent, "support_refund")) <= REFUND_RUN_STATEMENTS


def test_a_steps_ledger_rows_events_and_spans_are_one_round_trip_and_all_land(agent):
    """RunStore.add_rows sends its INSERTs together; every row must still arrive (issue 14)."""
    run = make_run(agent, "default")
    now = timezone.now()
    calls = [
        ("toolu_a", {"tool_name": "search_knowledge_base", "status": "succeeded", "result": "50%"}),
        ("toolu_b", {"tool_name": "search_knowledge_base", "status": "succeeded", "result": "b"}),
    ]
    events = [EventRow(type="tool_end", data={"n": 1}), EventRow(type="turn", data={"text": "it's 100%"})]
    spans = [
        SpanRow(
            trace_id="t" * 32,
            span_id="s" * 16,
            parent_span_id="",
            name="execute_tool x",
            started_at=now,
            ended_at=now,
            duration_ms=1.5,
            attributes={"a": "%s"},
            status="ok",
        )
    ]
    with CaptureQueriesContext(connection) as ctx:
        RunStore().add_rows(run, tool_calls=calls, events=events, spans=spans)
    assert len(ctx.captured_queries) == 1
    assert dict(ToolCall.objects.filter(run=run).values_list("tool_use_id", "result")) == {
        "toolu_a": "50%",
        "toolu_b": "b",
    }
    assert sorted(RunEvent.objects.filter(run=run).values_list("type", flat=True)) == ["tool_end", "turn"]
    assert RunEvent.objects.get(run=run, type="turn").data == {"text": "it's 100%"}
    assert Span.objects.get(run=run).attributes == {"a": "%s"}
    # The same key again updates the ledger row (the idempotency key decides), in one statement too.
    with CaptureQueriesContext(connection) as ctx:
        RunStore().add_rows(
            run,
            tool_calls=[
                ("toolu_a", {"tool_name": "search_knowledge_base", "status": "error", "result": "x"})
            ],
            events=[EventRow(type="tool_end", data={})],
        )
    assert len(ctx.captured_queries) == 1
    assert ToolCall.objects.get(run=run, tool_use_id="toolu_a").status == "error"


def test_a_turn_and_its_steps_rows_are_one_round_trip_and_a_taken_seq_writes_none(agent):
    """RunStore.add_turn: the turn comes back with its id; when its seq is taken, nothing of it lands."""
    run = make_run(agent, "default")
    store = RunStore()
    with CaptureQueriesContext(connection) as ctx:
        msg = store.add_turn(
            run,
            seq=0,
            role="user",
            content=[{"type": "text", "text": "50% off"}],
            fields={"flags": ["x"]},
            tool_calls=[
                ("toolu_a", {"tool_name": "search_knowledge_base", "status": "succeeded", "result": "r"})
            ],
            events=[EventRow(type="turn", data={"seq": 0})],
        )
    assert len(ctx.captured_queries) == 1
    stored = Message.objects.get(pk=msg.pk)
    assert (stored.seq, stored.role, stored.content, stored.flags) == (
        0,
        "user",
        [{"type": "text", "text": "50% off"}],
        ["x"],
    )
    assert list(RunEvent.objects.filter(run=run).values_list("data", flat=True)) == [{"seq": 0}]
    assert ToolCall.objects.get(run=run).result == "r"
    # A second turn compiles from the cached one-row SQL: its own values, not the first's.
    second = store.add_turn(
        run,
        seq=1,
        role="assistant",
        content=[{"type": "text", "text": "ok"}],
        fields={"model": "m", "usage": {"output_tokens": 3}},
    )
    assert Message.objects.filter(pk=second.pk).values_list("seq", "model", "usage").get() == (
        1,
        "m",
        {"output_tokens": 3},
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        store.add_turn(
            run, seq=1, role="user", content=[], fields={}, events=[EventRow(type="late", data={})]
        )
    assert not RunEvent.objects.filter(run=run, type="late").exists()
    assert Message.objects.filter(run=run).count() == 2
    # With the fence: another worker's lease means None (the caller rolls back); the owner's renews it.
    Run.objects.filter(pk=run.pk).update(lease_owner="w1")
    assert store.add_turn(run, seq=2, role="user", content=[], fields={}, fence=("w2", {})) is None
    with CaptureQueriesContext(connection) as ctx:
        third = store.add_turn(
            run, seq=3, role="user", content=[], fields={}, fence=("w1", {"iterations_inc": 1})
        )
    assert third is not None and len(ctx.captured_queries) == 1
    assert Run.objects.get(pk=run.pk).iterations == 1


@pytest.mark.django_db(transaction=True)
def test_the_commit_counter_tells_durable_commits_from_relaxed_and_read_only_ones(agent):
    """agentops.bench.commits: what the benches report as durable commits per step."""
    with count_commits() as counts:
        with transaction.atomic():  # matches no row: no transaction id, nothing written
            Run.objects.filter(pk=0).update(iterations=1)
        with transaction.atomic():  # writes, waits for the WAL flush: durable
            Agent.objects.filter(pk=agent.pk).update(max_tokens=1024)
            ToolCall.objects.filter(pk=0).update(attempts=1)
        with transaction.atomic():  # writes with synchronous_commit = off: not durable
            relax_commit()
            Agent.objects.filter(pk=agent.pk).update(max_tokens=512)
        with transaction.atomic():  # reads only
            list(Agent.objects.filter(pk=agent.pk))
        Agent.objects.filter(pk=agent.pk).update(max_tokens=256)  # autocommit write: durable
        list(Agent.objects.all())  # autocommit read
    assert (counts.transactions, counts.writing, counts.durable) == (6, 3, 2)
    assert counts.statements == 8


def test_a_cancel_requested_during_the_model_call_stops_the_run_before_its_tool_runs(agent, monkeypatch):
    """The next step's control check uses the flags the turn's fence returned (no read of its own):
    a cancel committed while the model was answering must still stop the run before the tool."""
    from agentops.llm import gateway

    run = make_run(agent, "never_ends")  # a search_knowledge_base call every step
    real = gateway.create_message

    def cancelled_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        Run.objects.filter(pk=run.pk).update(cancel_requested=True)  # another process's cancel, committed
        return real(**kwargs)

    monkeypatch.setattr(gateway, "create_message", cancelled_meanwhile)
    with CaptureQueriesContext(connection) as ctx:
        drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    assert (run.status, run.iterations) == (RunStatus.CANCELLED, 1)
    assert not ToolCall.objects.filter(run=run).exists()
    assert Message.objects.filter(run=run, role="assistant").count() == 1
    # No control read after the first: the cancel came back from the turn's fence.
    assert sum(q["sql"].lstrip().startswith("SELECT r.cancel_requested, r.pause_requested") for q in ctx.captured_queries) == 1


def test_the_model_calls_settlement_travels_with_its_turn_and_matches_the_ledger(agent):
    """One round trip carries the fence, the settlement and the turn; the ledger and the run's totals
    are what a separate settle would have written."""
    from budgets.models import Reservation, SpendEntry

    run = make_run(agent, "default")
    with CaptureQueriesContext(connection) as ctx:
        drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    turn_trips = [q["sql"] for q in ctx.captured_queries if "budgets_settle2" in q["sql"]]
    assert len(turn_trips) == 1 and "UPDATE runs_run r SET" in turn_trips[0] and 'INSERT INTO "runs_message"' in turn_trips[0]
    entry = SpendEntry.objects.get(run_id=run.pk)
    assert entry.cost > 0 and run.cost == entry.cost
    assert Reservation.objects.get(run_id=run.pk).status == "settled"
    assert Decimal(RunEvent.objects.get(run=run, type="turn").data["cost"]) == entry.cost


def test_a_lost_lease_rolls_the_settlement_back_and_the_answered_call_is_still_charged_once(agent, monkeypatch):
    """The fence fails inside the round trip that also settled: the rollback takes the settlement with
    it, and the harness then settles the answered call on its own — one ledger row, never two."""
    from agentops.llm import gateway
    from budgets.models import SpendEntry

    run = make_run(agent, "default")
    real = gateway.create_message

    def stolen_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        Run.objects.filter(pk=run.pk).update(lease_owner="another-worker")
        return real(**kwargs)

    monkeypatch.setattr(gateway, "create_message", stolen_meanwhile)
    drive_run(run.pk, worker_id="test-worker")
    assert not Message.objects.filter(run=run, role="assistant").exists()
    entries = list(SpendEntry.objects.filter(run_id=run.pk))
    assert len(entries) == 1 and entries[0].cost > 0


def test_the_lease_fence_and_the_settlement_write_no_indexed_column_so_they_can_be_hot_updates():
    """Every step's fence UPDATE sets the lease columns and every model call's settlement the run's totals;
    if one is in an index (a predicate or expression included), no such update can be HOT and each writes
    a new entry into all of runs_run's indexes (issue 14: 17 of them, two trigram GINs over the input)."""
    step_columns = {"lease_expires_at", "heartbeat_at", "iterations", "model_used", "prompt_version_id", "flags",
                    "cost", "input_tokens", "output_tokens"}
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'runs_run'")
        indexes = cur.fetchall()
    assert len(indexes) > 5
    offending = {name: sorted(c for c in step_columns if re.search(rf"\b{c}\b", definition)) for name, definition in indexes}
    assert not {name: cols for name, cols in offending.items() if cols}
    assert any("cost_rank" in definition for _, definition in indexes)  # the word match sees past it


def test_a_model_calls_run_update_is_hot_with_a_long_input_and_a_finished_run_is_ranked(agent):
    """Measured, not inferred: PostgreSQL's own count of HOT updates (this transaction's) for the
    settlement's UPDATE of a running run with 20 KB of input, then the trigger ranking a finished run."""
    run = make_run(agent, "default")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, input="refund " * 3000)

    def counts() -> tuple[int, int]:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_stat_get_xact_tuples_updated('runs_run'::regclass), "
                        "pg_stat_get_xact_tuples_hot_updated('runs_run'::regclass)")
            return cur.fetchone()

    with transaction.atomic():
        before = counts()
        with connection.cursor() as cur:
            for _ in range(3):  # the statement budgets_settle2 and budgets_settle_local run
                cur.execute("UPDATE runs_run SET cost = cost + %s, input_tokens = input_tokens + 10, "
                            "output_tokens = output_tokens + 5 WHERE id = %s", [Decimal("0.01"), run.pk])
        after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (3, 3)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    run.refresh_from_db()
    assert run.cost_rank == run.cost == Decimal("0.03")
