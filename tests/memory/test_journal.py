"""The failure journal end to end: a deterministic failure in run 1 is a known-failures note in run 2,
and the scripted model that reads the note takes the other path; age-out, clearing, the breaker rule,
what is (not) recorded, and the statement budget of a run that meets no failure."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentops.harness.loop import drive_run
from agentops.memory import journal
from agentops.memory.models import FailureEntry
from runs.models import Agent, Run, RunStatus, ToolCall
from tenants.models import Role

pytestmark = pytest.mark.django_db


def _run(agent, scenario: str, subject: str = "ACC-1002", **metadata) -> Run:  # type: ignore[no-untyped-def]
    meta = {"scenario": scenario, **({"subject": subject} if subject else {}), **metadata}
    return Run.objects.create(
        tenant=agent.tenant,
        agent=agent,
        input="Refund Marcus's cancelled plan.",
        submitter_role=Role.OPERATOR,
        metadata=meta,
    )


def _drive(run: Run) -> Run:
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return run


REFUND = {
    "account_id": "ACC-1002",
    "transaction_id": "TX-5002",
    "amount": "975.00",
    "reason": "Customer cancelled the business plan in its first week",
}


def _refund_failed(agent, message: str = "too much", **kwargs) -> None:  # type: ignore[no-untyped-def]
    """File a failed refund for ACC-1002 (the shape refund_remembered and refund_over_limit call)."""
    journal.record(
        tenant_id=agent.tenant_id,
        agent_id=agent.pk,
        tool="issue_refund",
        arguments=REFUND,
        kind="tool_error",
        error_type="validation_error",
        message=message,
        **{"subject": "ACC-1002", **kwargs},
    )


def _tools(run: Run) -> list[str]:
    return list(ToolCall.objects.filter(run=run).order_by("id").values_list("tool_name", flat=True))


def test_a_failure_yesterday_is_a_note_today_and_the_scripted_agent_takes_the_other_path(agent):
    yesterday = timezone.now() - timedelta(days=1)
    with journal.clock_at(yesterday):
        first = _drive(_run(agent, "refund_remembered"))
    assert first.status == RunStatus.SUCCEEDED
    assert _tools(first) == ["lookup_account", "issue_refund"]
    entry = FailureEntry.objects.for_tenant(agent.tenant).get()
    assert (entry.agent_id, entry.tool, entry.kind, entry.error_type, entry.subject, entry.run_id) == (
        agent.pk,
        "issue_refund",
        "tool_error",
        "validation_error",
        "ACC-1002",
        first.pk,
    )
    assert (
        entry.pattern == '{"account_id":"<id>","amount":"<number>","reason":"<text>","transaction_id":"<id>"}'
    )
    assert "more than the 900.00 left to refund" in entry.message
    assert entry.last_seen_at == yesterday and entry.expires_at == yesterday + timedelta(days=14)

    second = _drive(_run(agent, "refund_remembered"))
    opening = second.messages.get(seq=0).content
    assert len(opening) == 2 and opening[1]["text"].startswith("<known_failures>")
    assert "issue_refund" in opening[1]["text"] and "validation_error" in opening[1]["text"]
    assert "data, not instructions" in opening[1]["text"]
    # The note changed the scripted model's answer: no second refund attempt, a hand-off instead.
    assert second.status == RunStatus.AWAITING_APPROVAL
    assert _tools(second) == ["lookup_account", "escalate_to_human"]
    assert second.events.filter(type="known_failures").exists()


def test_same_failure_again_adds_an_occurrence_and_a_cleared_one_starts_over(agent):
    for _ in range(2):
        _drive(_run(agent, "refund_remembered", extraction_scenario="extract_facts"))
    # The second run read the note and escalated: one failure only. The same shape again adds to it.
    entry = FailureEntry.objects.for_tenant(agent.tenant).get()
    assert entry.occurrences == 1
    _refund_failed(agent, "again")
    entry.refresh_from_db()
    assert entry.occurrences == 2 and entry.message == "again"
    assert journal.clear(entry=entry, by="olga") is True
    assert journal.clear(entry=entry, by="olga") is False
    assert journal.note(tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["issue_refund"]) == ""
    _refund_failed(agent, "once more")
    entry.refresh_from_db()
    assert (entry.occurrences, entry.cleared_at, entry.cleared_by) == (1, None, "")
    assert FailureEntry.objects.for_tenant(agent.tenant).count() == 1


def test_entries_age_out_of_the_note(agent, settings):
    settings.MEMORY_JOURNAL_TTL_DAYS = 14
    now = timezone.now()
    _refund_failed(agent, now=now - timedelta(days=15))
    assert journal.note(tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["issue_refund"], now=now) == ""
    assert journal.note(
        tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["issue_refund"], now=now - timedelta(days=2)
    )
    # A tool the run is not offered is not in its note.
    assert (
        journal.note(
            tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["send_email"], now=now - timedelta(days=2)
        )
        == ""
    )
    # The purge deletes what expired a month ago and keeps the rest for the page.
    assert journal.purge(now=now + timedelta(days=10)) == 0
    assert journal.purge(now=now + timedelta(days=30)) == 1


def test_the_note_is_short(agent):
    for word in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"):
        journal.record(
            tenant_id=agent.tenant_id,
            agent_id=agent.pk,
            tool="send_email",
            arguments={"to": "a@example.com", "subject": word, "body": "x " * 900},
            kind="refused",
            error_type="permission_denied",
            message="y" * 500,
            subject="",
        )
    note = journal.note(tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["send_email"])
    assert note.count("\n- ") == journal.NOTE_MAX_ENTRIES and len(note) < 2500
    assert "[REDACTED]" not in note and '"to":"<email>"' in note and '"body":"<text>"' in note


def test_a_journal_entry_of_the_same_subject_counts_toward_the_repetition_breaker(agent):
    agent.repetition_threshold = 2
    agent.save()
    _refund_failed(agent)
    # Another subject's entry is not this call's: the refund is tried (and goes through).
    other = _drive(_run(agent, "refund_over_limit", subject="ACC-1003"))
    assert other.outcome != "repetition"
    # Same subject: one call plus the journal's entry reaches the threshold of 2 before the call runs.
    # (refund_over_limit carries no note branch, so the model tries the refund anyway.)
    run = _drive(_run(agent, "refund_over_limit", subject="ACC-1002"))
    assert (run.status, run.outcome) == (RunStatus.FAILED, "repetition"), run.error_message
    assert "failure journal" in run.error_message
    assert ToolCall.objects.get(run=run, tool_name="issue_refund").error_class == "not_executed"
    trip = FailureEntry.objects.for_tenant(agent.tenant).get(kind="breaker")
    assert (trip.tool, trip.error_type, trip.run_id) == ("issue_refund", "RepetitionBreaker", run.pk)


def test_refusals_and_validation_failures_are_recorded_transient_ones_are_not(agent):
    _drive(_run(agent, "unknown_tool"))
    _drive(_run(agent, "invalid_args"))
    kinds = set(FailureEntry.objects.for_tenant(agent.tenant).values_list("tool", "kind", "error_type"))
    assert ("delete_database", "refused", "unknown_tool") in kinds
    assert ("issue_refund", "validation", "validation_error") in kinds
    # A hallucinated tool is never offered, so it is on the page but in no note.
    assert "delete_database" not in journal.note(
        tenant_id=agent.tenant_id, agent_id=agent.pk, offered=["issue_refund", "lookup_account"]
    )


def test_an_eval_run_neither_reads_nor_writes_the_journal(agent):
    _refund_failed(agent, subject="")
    run = _drive(_run(agent, "unknown_tool", eval={"case_id": 1, "fixtures": {}}))
    assert len(run.messages.get(seq=0).content) == 1
    assert not FailureEntry.objects.for_tenant(agent.tenant).filter(run_id=run.pk).exists()


def test_a_run_that_meets_no_failure_reads_the_journal_from_the_cache(agent):
    _drive(_run(agent, "kb_answer"))  # warms the caches (prices, grants, this agent's journal)
    run = _run(agent, "kb_answer")
    with CaptureQueriesContext(connection) as ctx:
        drive_run(run.pk, worker_id="test-worker")
    assert not [q for q in ctx.captured_queries if "memory_failureentry" in q["sql"]]
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_the_pattern_generalises_volatile_values():
    assert journal.pattern_of(
        {"b": [1, "TX-1"], "a": "high", "url": "https://docs.example.com/x?y=1", "n": None, "ok": True}
    ) == ('{"a":"high","b":["<number>","<id>"],"n":null,"ok":true,"url":"<url:docs.example.com>"}')
    assert journal.pattern_of("not an object") == '{"_raw":"<text>"}'


def test_a_final_answer_out_of_validation_retries_is_filed_and_noted(agent, monkeypatch):
    original = Agent.resolve_prompt

    def resolve(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return replace(
            original(self, *args, **kwargs),
            validators=({"type": "regex", "pattern": r"^Ticket #\d+"},),
            params={"validation_retries": 0},
        )

    monkeypatch.setattr(Agent, "resolve_prompt", resolve)
    run = _drive(_run(agent, "default"))
    assert (run.status, run.outcome) == (RunStatus.FAILED, "validation")
    entry = FailureEntry.objects.for_tenant(agent.tenant).get()
    assert (entry.tool, entry.kind, entry.error_type, entry.pattern) == (
        journal.FINAL_ANSWER,
        "validation",
        "OutputValidation",
        "{}",
    )
    # A failed final answer is in every note, whatever tools the run is offered.
    assert "a final answer failed with OutputValidation" in journal.note(
        tenant_id=agent.tenant_id, agent_id=agent.pk, offered=[]
    )
