"""Erasing a subject (or deleting a fact) also takes the text out of the runs' logs: the ``remember``
call that wrote it, its result, the ledger, word-for-word copies; the log keeps its shape, so a run
waiting for a human continues afterwards. Other subjects and other tenants keep theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentops.escalations.models import Escalation
from agentops.escalations.services import ArgumentsMismatch, escalation_decide
from agentops.harness.loop import drive_run
from agentops.memory import services
from agentops.memory.models import Fact
from agentops.memory.transcripts import MARKER
from runs.models import Agent, Message, Run, RunEvent, RunStatus, ToolCall, ToolGrant
from tenants.models import AuditEvent, Role
from tenants.services import api_key_create
from tests.memory.conftest import subject_run
from tests.runtime.conftest import assert_log_consistent

pytestmark = pytest.mark.django_db

REMEMBERED = "Prefers replies by email, never by phone; on the annual Pro plan."


def everything_about(run: Run) -> str:
    """Every place a run's text is kept, as one string."""
    rows: list[Any] = [run.result, run.error_message]
    rows += list(Message.unscoped.filter(run=run).values_list("content", flat=True))
    rows += list(ToolCall.unscoped.filter(run=run).values_list("arguments", "result"))
    rows += list(RunEvent.unscoped.filter(run=run).values_list("data", flat=True))
    rows += list(run.spans.values_list("attributes", flat=True))
    rows += list(Escalation.objects.filter(run=run).values_list("arguments", flat=True))
    return json.dumps(rows)


def decide(escalation: Escalation, decision: str, actor: Any, comment: str = "") -> None:
    escalation_decide(
        escalation_id=escalation.pk,
        tenant=escalation.tenant,
        decision=decision,
        comment=comment,
        actor=actor,
        arguments_sha256=escalation.arguments_sha256,
    )


def test_erasing_a_subject_scrubs_the_run_that_remembered_it_from_pages_and_apis(
    memory_agent, members, other_tenant, client_for, client
):  # type: ignore[no-untyped-def]
    tenant = memory_agent.tenant
    first = subject_run(memory_agent, "remember_customer", "ACC-1001")
    other_subject = subject_run(memory_agent, "remember_customer", "ACC-2002")
    for run in (first, other_subject):
        assert drive_run(run.pk, worker_id="w") == RunStatus.SUCCEEDED
    second = subject_run(memory_agent, "returning_customer", "ACC-1001")
    assert drive_run(second.pk, worker_id="w") == RunStatus.SUCCEEDED
    fact = Fact.objects.get(tenant=tenant, subject="ACC-1001")
    stranger = Agent.objects.create(
        tenant=other_tenant,
        name="support",
        system_prompt="S",
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=["remember"],
    )
    ToolGrant.objects.create(tenant=other_tenant, tool_name="remember")
    theirs = subject_run(stranger, "remember_customer", "ACC-1001")
    assert drive_run(theirs.pk, worker_id="w") == RunStatus.SUCCEEDED
    for run in (first, other_subject, theirs):
        assert REMEMBERED in everything_about(run)

    viewer = client_for(members[Role.VIEWER])
    page = viewer.get(f"/t/{tenant.slug}/runs/{second.pk}/").content.decode()
    assert 'id="memory-recalled"' in page and f"/t/{tenant.slug}/memory/facts/{fact.pk}/" in page

    erased = services.subject_erase(tenant=tenant, actor=members[Role.ADMIN], subject="ACC-1001")
    assert erased == 1

    first.refresh_from_db()
    assert REMEMBERED not in everything_about(first) and MARKER in everything_about(first)
    # The log keeps its shape: the tool_use still has a string text, its result is still JSON.
    (use,) = [b for m in first.messages.all() for b in m.content if b.get("type") == "tool_use"]
    assert use["name"] == "remember" and use["input"] == {"text": MARKER}
    (result,) = [b for m in first.messages.all() for b in m.content if b.get("type") == "tool_result"]
    assert json.loads(result["content"]) == {
        "fact_id": fact.pk,
        "subject": "ACC-1001",
        "stored": MARKER,
        "flagged": False,
    }
    assert_log_consistent(first)
    # Another subject's run and another tenant's run are untouched.
    assert REMEMBERED in everything_about(other_subject) and REMEMBERED in everything_about(theirs)
    assert (
        Fact.objects.filter(subject="ACC-2002").count() == 1
        and Fact.objects.filter(tenant=other_tenant).count() == 1
    )

    # Pages and APIs: the run page, the messages API, the events API.
    html = viewer.get(f"/t/{tenant.slug}/runs/{first.pk}/").content.decode()
    assert REMEMBERED not in html and MARKER in html
    recalled = viewer.get(f"/t/{tenant.slug}/runs/{second.pk}/").content.decode()
    assert (
        f"fact #{fact.pk}" in recalled
        and "erased" in recalled
        and f"/memory/facts/{fact.pk}/" not in recalled
    )
    key = api_key_create(tenant=tenant, actor=None, name="runs", scopes=["runs"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    messages = client.get(f"/api/v1/runs/{first.pk}/messages", **auth)
    assert messages.status_code == 200 and REMEMBERED not in messages.content.decode()
    assert MARKER in messages.content.decode()
    events = client.get(f"/api/v1/runs/{first.pk}/events", {"follow": "0"}, **auth)
    body = b"".join(events.streaming_content).decode()
    assert "event: turn" in body and REMEMBERED not in body

    audit = AuditEvent.objects.get(tenant=tenant, action="memory.subject_erase")
    assert audit.after == {
        "facts_erased": 1,
        "runs_scrubbed": 1,
        "messages_scrubbed": 2,
        "tool_calls_scrubbed": 1,
        "events_scrubbed": 0,
        "escalations_scrubbed": 0,
    }
    assert REMEMBERED not in json.dumps([audit.before, audit.after, audit.target_repr])


def test_deleting_one_fact_scrubs_only_that_fact_from_the_log(memory_agent, members, tmp_path: Path):  # type: ignore[no-untyped-def]
    run = subject_run(memory_agent, "remember_customer", "ACC-1001")
    assert drive_run(run.pk, worker_id="w") == RunStatus.SUCCEEDED
    fact = Fact.objects.get(subject="ACC-1001")
    Run.objects.filter(pk=run.pk).update(result=f"Noted: {REMEMBERED} Anything else?")  # a word-for-word copy
    # An event that lists fact texts (as an extraction event could): the text goes, the shape stays.
    RunEvent.objects.create(
        tenant=run.tenant, run=run, type="facts_extracted", data={"facts": 1, "texts": [REMEMBERED]}
    )
    other_fact = "Likes short answers."
    scenario = tmp_path / "short.json"
    scenario.write_text(
        json.dumps(
            {
                "steps": [
                    {"content": [{"type": "tool_use", "name": "remember", "input": {"text": other_fact}}]},
                    {"content": [{"type": "text", "text": "Noted."}]},
                ]
            }
        )
    )
    kept = subject_run(memory_agent, str(scenario), "ACC-1001")
    assert drive_run(kept.pk, worker_id="w") == RunStatus.SUCCEEDED
    before = everything_about(kept)

    services.fact_delete(tenant=memory_agent.tenant, actor=members[Role.ADMIN], fact_id=fact.pk)
    run.refresh_from_db()
    assert run.result == f"Noted: {MARKER} Anything else?"
    assert RunEvent.objects.get(run=run, type="facts_extracted").data == {"facts": 1, "texts": [MARKER]}
    assert REMEMBERED not in everything_about(run)
    assert (
        everything_about(kept) == before and other_fact in before
    )  # the subject's other fact stays, in its run too
    assert Fact.objects.filter(subject="ACC-1001").count() == 1
    audit = AuditEvent.objects.get(action="memory.fact_delete")
    assert audit.after["runs_scrubbed"] == 1 and audit.after["tool_calls_scrubbed"] == 1
    assert audit.after["events_scrubbed"] == 1
    assert REMEMBERED not in json.dumps([audit.before, audit.after])


def test_a_run_waiting_for_approval_continues_after_its_subject_is_erased(
    memory_agent, members, tmp_path: Path, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    """The run remembered a fact and asked for a refund over the limit in the same turn; the subject
    is erased while a human decides; approved, it re-sends its (scrubbed) log and finishes."""
    scenario = tmp_path / "remember_and_refund.json"
    scenario.write_text(
        json.dumps(
            {
                "steps": [
                    {
                        "content": [
                            {"type": "text", "text": "Noting that, and asking for the refund."},
                            {"type": "tool_use", "name": "remember", "input": {"text": REMEMBERED}},
                            {
                                "type": "tool_use",
                                "name": "issue_refund",
                                "input": {
                                    "account_id": "ACC-1002",
                                    "transaction_id": "TX-5002",
                                    "amount": "900.00",
                                    "reason": "Requested",
                                },
                            },
                        ]
                    },
                    {"content": [{"type": "text", "text": "The refund went through."}]},
                ]
            }
        )
    )
    ToolGrant.objects.filter(tenant=memory_agent.tenant, tool_name="issue_refund").update(
        approval_over={"amount": "100.00"}
    )
    run = subject_run(memory_agent, str(scenario), "ACC-1001")
    assert drive_run(run.pk, worker_id="w") == RunStatus.AWAITING_APPROVAL
    assert Fact.objects.filter(subject="ACC-1001").count() == 1

    services.subject_erase(tenant=memory_agent.tenant, actor=members[Role.ADMIN], subject="ACC-1001")
    assert REMEMBERED not in everything_about(run)

    escalation = Escalation.objects.get(run=run)
    with django_capture_on_commit_callbacks(execute=True):  # the decision re-queues the run on commit
        decide(escalation, "approve", members[Role.ADMIN])
    # "not_leased" when the approval's job already ran it (tests run jobs inline)
    drive_run(run.pk, worker_id="w")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    assert run.result == "The refund went through."
    assert_log_consistent(run)
    assert REMEMBERED not in everything_about(run)
    assert not Fact.objects.filter(subject="ACC-1001").exists()  # the resumed run did not write it again


def test_a_gated_remember_call_erased_while_pending_can_be_rejected_not_approved(
    memory_agent, members, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    ToolGrant.objects.filter(tenant=memory_agent.tenant, tool_name="remember").update(requires_approval=True)
    run = subject_run(memory_agent, "remember_customer", "ACC-1001")
    assert drive_run(run.pk, worker_id="w") == RunStatus.AWAITING_APPROVAL
    escalation = Escalation.objects.get(run=run)
    assert escalation.arguments == {"text": REMEMBERED}
    services.subject_erase(tenant=memory_agent.tenant, actor=members[Role.ADMIN], subject="ACC-1001")
    escalation.refresh_from_db()
    assert escalation.arguments == {"text": MARKER} and REMEMBERED not in everything_about(run)
    assert AuditEvent.objects.get(action="memory.subject_erase").after["escalations_scrubbed"] == 1
    with pytest.raises(ArgumentsMismatch):  # approving would store the marker as a fact
        decide(escalation, "approve", members[Role.ADMIN])
    with django_capture_on_commit_callbacks(execute=True):
        decide(escalation, "reject", members[Role.ADMIN], "The customer asked us to forget this.")
    drive_run(run.pk, worker_id="w")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and not Fact.objects.exists()
    assert_log_consistent(run)
    assert REMEMBERED not in everything_about(run)
