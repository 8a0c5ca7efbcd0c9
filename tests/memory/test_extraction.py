"""Extraction on trim: a long scripted run's trimmed turns become facts under the run's subject, the
extraction calls are priced and in the ledger, and a bad answer, a missing subject or a cap refusal
never breaks the run."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentops.harness import extract
from agentops.harness.loop import drive_run
from agentops.llm import gateway
from agentops.memory import extraction
from agentops.memory.models import Fact
from budgets.models import Reservation, SpendEntry
from runs.models import Message, Run, RunStatus
from tenants.models import Role
from tests.runtime.conftest import assert_log_consistent

pytestmark = pytest.mark.django_db
FACTS = {
    "The customer prefers to be contacted by email, not phone.",
    "The customer's business plan renews in March.",
}


@pytest.fixture(autouse=True)
def _small_context(settings):  # type: ignore[no-untyped-def]
    settings.CONTEXT_TRIM_TOKENS = 1_200


def _drive(agent, **metadata) -> Run:  # type: ignore[no-untyped-def]
    run = Run.objects.create(
        tenant=agent.tenant,
        agent=agent,
        input="What is the refund policy?",
        submitter_role=Role.OPERATOR,
        metadata={"scenario": "long_lookup", **metadata},
    )
    drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    assert_log_consistent(run)
    return run


def test_trimming_a_long_run_stores_extracted_facts_and_charges_them_to_the_run(agent):
    run = _drive(agent, subject="ACC-1002")
    assert run.status == RunStatus.SUCCEEDED, run.error_message
    extracted = list(run.events.filter(type="facts_extracted").order_by("id"))
    assert extracted, "the context was never trimmed: lower CONTEXT_TRIM_TOKENS"
    # Each trim extracts the turns it newly drops, once: the ranges follow each other without overlap.
    spans = [(e.data["from_seq"], e.data["to_seq"]) for e in extracted]
    assert spans[0][0] == 1 and all(b[0] == a[1] + 1 for a, b in zip(spans, spans[1:], strict=False))
    assert extracted[0].data["summary"] == f"extracted 2 facts from turns {spans[0][0]}–{spans[0][1]}"
    facts = Fact.objects.for_tenant(agent.tenant).filter(source_run_id=run.pk)
    assert {f.text for f in facts} == FACTS
    assert {(f.subject, f.source, f.agent_id) for f in facts} == {
        ("ACC-1002", Fact.Source.EXTRACTION, agent.pk)
    }
    # The ledger: one entry per model call of the run plus one per extraction, and the run's cost is their sum.
    spend = SpendEntry.objects.for_tenant(agent.tenant).filter(run_id=run.pk)
    assert spend.count() == run.iterations + len(extracted)
    costs = [Decimal(e.data["cost"]) for e in extracted]
    assert all(c > 0 for c in costs)
    assert sum(costs) <= run.cost and run.cost == sum(s.cost for s in spend)


def test_a_reply_that_is_not_json_lines_stores_nothing_but_is_still_charged(agent):
    run = _drive(agent, subject="ACC-1002", extraction_scenario="extract_garbage")
    assert run.status == RunStatus.SUCCEEDED
    extracted = list(run.events.filter(type="facts_extracted"))
    assert extracted and all(e.data["facts"] == 0 for e in extracted)
    assert not Fact.objects.for_tenant(agent.tenant).exists()
    assert SpendEntry.objects.for_tenant(agent.tenant).filter(run_id=run.pk).count() == run.iterations + len(
        extracted
    )


def test_a_run_without_a_subject_asks_nothing(agent):
    run = _drive(agent)
    assert run.status == RunStatus.SUCCEEDED
    skipped = list(run.events.filter(type="facts_extraction_skipped"))
    assert skipped and {e.data["reason"] for e in skipped} == {"no_subject"}
    assert SpendEntry.objects.for_tenant(agent.tenant).filter(run_id=run.pk).count() == run.iterations


def test_a_cap_refusal_skips_the_extraction_and_says_so(agent, tier_generous):
    # The run's caps leave nothing: the extraction is refused before any token is spent, nothing is
    # stored, and the caller (the loop) goes on to its own call, which the cap then stops as usual.
    tier_generous.task_cost_cap = Decimal("0.000001")
    tier_generous.save()
    run = Run.objects.create(
        tenant=agent.tenant,
        agent=agent,
        input="x",
        submitter_role=Role.OPERATOR,
        metadata={"scenario": "long_lookup", "subject": "ACC-1002"},
    )
    turns = [
        Message(seq=1, role="assistant", content=[{"type": "text", "text": "The customer prefers email."}]),
        Message(seq=2, role="user", content=[{"type": "text", "text": "ok"}]),
    ]
    events: list[tuple[str, dict]] = []
    stored = extract.on_trim(
        run,
        turns,
        model=agent.model,
        event=lambda type_, **data: events.append((type_, data)),
        gateway=gateway,
    )
    assert stored == 0
    assert events == [
        (
            "facts_extraction_skipped",
            {"reason": "CostCapExceeded", "detail": events[0][1]["detail"], "from_seq": 1, "to_seq": 2},
        )
    ]
    assert "cap" in events[0][1]["detail"].lower()
    assert (
        not Reservation.objects.filter(run_id=run.pk).exists()
        and not SpendEntry.objects.filter(run_id=run.pk).exists()
    )
    assert not Fact.objects.for_tenant(agent.tenant).exists()


@pytest.mark.parametrize(
    ("reply", "facts"),
    [
        ('{"fact": "A"}\n{"fact": "B"}', ["A", "B"]),
        ('```json\n{"fact": "A"},\n\n{"fact": "A"}\n```', ["A"]),
        ('{"fact": "A"}\nnot json\n{"fact": ""}\n{"other": 1}\n[1]', ["A"]),
        ("Sure! The customer likes email.", []),
        ("", []),
        ("\n".join(f'{{"fact": "F{i}"}}' for i in range(30)), [f"F{i}" for i in range(extraction.MAX_FACTS)]),
    ],
)
def test_parse_reads_json_lines_and_nothing_else(reply, facts):
    assert extraction.parse(reply) == facts


def test_the_request_carries_the_dropped_turns_and_the_subject():
    turns = [
        (
            1,
            "assistant",
            [{"type": "tool_use", "id": "t", "name": "lookup_account", "input": {"account_id": "ACC-1"}}],
        ),
        (
            2,
            "user",
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": '{"plan": "business"}',
                    "is_error": True,
                }
            ],
        ),
    ]
    text = extraction.request_messages(turns, subject="ACC-1")[0]["content"][0]["text"]
    assert text.startswith("Subject: ACC-1") and '<turn seq="1" role="assistant">' in text
    assert (
        '[call lookup_account {"account_id": "ACC-1"}]' in text
        and '[result (error) {"plan": "business"}]' in text
    )


def test_a_fact_the_store_refuses_is_dropped_and_the_others_kept(agent, monkeypatch):
    from agentops.memory import facts

    write = facts.write_fact

    def picky(**kwargs):  # type: ignore[no-untyped-def]
        if "March" in kwargs["text"]:
            raise ValueError("refused")
        return write(**kwargs)

    monkeypatch.setattr(facts, "write_fact", picky)
    run = _drive(agent, subject="ACC-1002")
    assert run.status == RunStatus.SUCCEEDED
    first = run.events.filter(type="facts_extracted").order_by("id").first()
    assert (first.data["facts"], first.data["refused"]) == (1, 1)
    assert set(Fact.objects.for_tenant(agent.tenant).values_list("text", flat=True)) == {
        "The customer prefers to be contacted by email, not phone."
    }
