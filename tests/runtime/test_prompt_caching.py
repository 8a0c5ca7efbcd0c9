"""Prompt caching: breakpoints on tools, system and the end of the conversation; the scripted API
reports writes then reads; the ledger prices them exactly; the reservation assumes a cold cache."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agentops.harness.loop import drive_run
from agentops.llm import gateway
from agentops.llm.replies import cache_usage
from budgets.models import ModelPrice, Reservation, SpendEntry
from runs.models import Run
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db

# Claude Sonnet 4.6, USD per million tokens, as published (shared/reference/pricing, source B):
# base input, 5-minute cache write, 1-hour cache write, cache hit, output.
PUBLISHED_SONNET_4_6 = {
    "input": Decimal("3"),
    "write_5m": Decimal("3.75"),
    "write_1h": Decimal("6"),
    "read": Decimal("0.30"),
    "output": Decimal("15"),
}
LONG_SYSTEM = "You are a careful support agent. " + " ".join(
    f"Policy rule {i}: answer from the knowledge base only." for i in range(120)
)


def _twenty_turns(tmp_path) -> str:  # type: ignore[no-untyped-def]
    steps = [
        {"content": [{"type": "tool_use", "name": "search_knowledge_base", "input": {"query": f"topic {i}"}}]}
        for i in range(19)
    ]
    steps.append({"content": [{"type": "text", "text": "Here is what I found."}]})
    path = tmp_path / "twenty.json"
    path.write_text(json.dumps({"description": "20 turns", "steps": steps}))
    return str(path)


def test_breakpoints_sit_on_the_last_tool_the_system_prompt_and_the_last_block():
    tools = [{"name": "a", "input_schema": {}}, {"name": "b", "input_schema": {}}]
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]},
    ]
    system, cached_tools, cached = gateway.with_cache_breakpoints(
        system="S", tools=tools, messages=messages, ttl="1h"
    )
    assert system == [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert "cache_control" not in cached_tools[0] and cached_tools[1]["cache_control"]["ttl"] == "1h"
    assert cached[-1]["content"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert "cache_control" not in json.dumps(cached[:-1]) and "cache_control" not in json.dumps(
        messages
    )  # inputs untouched
    _, _, five = gateway.with_cache_breakpoints(system="S", tools=[], messages=messages[:1], ttl="5m")
    assert five[0]["content"] == [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]
    # Without breakpoints (or under the minimum length) nothing is cached.
    assert cache_usage({"system": LONG_SYSTEM, "messages": messages}) is None


def test_a_twenty_turn_run_reads_the_cache_from_turn_two_and_the_ledger_prices_it_exactly(agent, tmp_path):
    agent.system_prompt = LONG_SYSTEM
    agent.iteration_cap = 30
    agent.save()
    run = make_run(agent, _twenty_turns(tmp_path))
    drive_run(run.pk, worker_id="w")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    turns = list(run.messages.filter(role="assistant").order_by("seq"))
    assert len(turns) == 20
    first, rest = turns[0].usage, [t.usage for t in turns[1:]]
    assert (
        first["cache_read_input_tokens"] == 0 and first["cache_creation"]["ephemeral_5m_input_tokens"] > 1000
    )
    assert all(u["cache_read_input_tokens"] > 0 for u in rest)
    # Each turn reads back what the turn before it wrote (and read).
    for before, after in zip(turns, turns[1:], strict=False):
        written = (
            before.usage["cache_creation_input_tokens"]
            + before.usage["cache_read_input_tokens"]
            + before.usage["input_tokens"]
        )
        assert after.usage["cache_read_input_tokens"] <= written
    hit = sum(u["cache_read_input_tokens"] for u in rest) / sum(
        u["cache_read_input_tokens"] + u["cache_creation_input_tokens"] + u["input_tokens"]
        for u in [first, *rest]
    )
    assert hit > 0.8
    # The ledger: the published prices per token class, nothing rounded.
    price = ModelPrice.objects.filter(model=agent.model).order_by(
        "-effective_from"
    ).first() or ModelPrice.objects.get(model="claude-sonnet-4-6")
    expected = sum(
        (
            Decimal(u["input_tokens"]) * price.input
            + Decimal(u["output_tokens"]) * price.output
            + Decimal(u["cache_creation"]["ephemeral_5m_input_tokens"]) * price.cache_write_5m
            + Decimal(u["cache_creation"]["ephemeral_1h_input_tokens"]) * price.cache_write_1h
            + Decimal(u["cache_read_input_tokens"]) * price.cache_read
        )
        / Decimal(1_000_000)
        for u in [first, *rest]
    )
    ledger = sum(e.cost for e in SpendEntry.objects.filter(run_id=run.pk))
    assert ledger == expected
    # The same sum from the published price list, not from the price table the ledger used.
    pub = PUBLISHED_SONNET_4_6
    published = sum(
        (
            Decimal(u["input_tokens"]) * pub["input"]
            + Decimal(u["output_tokens"]) * pub["output"]
            + Decimal(u["cache_creation"]["ephemeral_5m_input_tokens"]) * pub["write_5m"]
            + Decimal(u["cache_creation"]["ephemeral_1h_input_tokens"]) * pub["write_1h"]
            + Decimal(u["cache_read_input_tokens"]) * pub["read"]
        )
        / Decimal(1_000_000)
        for u in [first, *rest]
    )
    assert {t.model for t in turns} == {"claude-sonnet-4-6"} and ledger == published
    assert sum(e.cache_read_tokens for e in SpendEntry.objects.filter(run_id=run.pk)) == sum(
        u["cache_read_input_tokens"] for u in rest
    )


def test_one_hour_ttl_writes_at_the_one_hour_rate(agent, tmp_path):
    agent.system_prompt = LONG_SYSTEM
    agent.cache_ttl = "1h"
    agent.save()
    run = make_run(agent, "default")
    drive_run(run.pk, worker_id="w")
    usage = Run.objects.get(pk=run.pk).messages.get(role="assistant").usage
    assert (
        usage["cache_creation"]["ephemeral_1h_input_tokens"] > 1000
        and usage["cache_creation"]["ephemeral_5m_input_tokens"] == 0
    )
    entry = SpendEntry.objects.get(run_id=run.pk)
    assert entry.cache_write_1h_tokens == usage["cache_creation"]["ephemeral_1h_input_tokens"]


def test_the_reservation_still_assumes_a_cold_cache(agent, tmp_path):
    # Every reservation of a cached run is the worst case: every input token at the dearest
    # input rate (a 1-hour cache write), whatever the previous turn cached.
    agent.system_prompt = LONG_SYSTEM
    agent.save()
    run = make_run(agent, _twenty_turns(tmp_path))
    drive_run(run.pk, worker_id="w")
    price = ModelPrice.objects.filter(model=agent.model).order_by(
        "-effective_from"
    ).first() or ModelPrice.objects.get(model="claude-sonnet-4-6")
    reservations = list(Reservation.objects.filter(run_id=run.pk).order_by("pk"))
    assert len(reservations) == 20
    entries = list(SpendEntry.objects.filter(run_id=run.pk).order_by("pk"))
    for r, e in zip(reservations, entries, strict=True):
        prompt = e.input_tokens + e.cache_write_5m_tokens + e.cache_write_1h_tokens + e.cache_read_tokens
        cold = (Decimal(prompt) * max(price.input, price.cache_write_5m, price.cache_write_1h)) / Decimal(
            1_000_000
        )
        assert r.amount >= cold + Decimal(e.output_tokens) * price.output / Decimal(1_000_000)


def test_the_spend_page_shows_cache_savings_that_match_the_ledger(agent, tmp_path, client, admin_user):
    from django.urls import reverse

    agent.system_prompt = LONG_SYSTEM
    agent.save()
    run = make_run(agent, _twenty_turns(tmp_path))
    drive_run(run.pk, worker_id="w")
    entries = list(SpendEntry.objects.filter(run_id=run.pk))
    uncached = Decimal(0)
    for e in entries:
        price = ModelPrice.objects.filter(model=e.model).order_by("-effective_from").first()
        assert price is not None
        prompt = e.input_tokens + e.cache_write_5m_tokens + e.cache_write_1h_tokens + e.cache_read_tokens
        uncached += (Decimal(prompt) * price.input + Decimal(e.output_tokens) * price.output) / Decimal(
            1_000_000
        )
    charged = sum(e.cost for e in entries)
    client.force_login(admin_user)
    resp = client.get(reverse("budgets:spend", args=[agent.tenant.slug]))
    assert resp.status_code == 200
    row = next(c for c in resp.context["cache"] if c["agent_id"] == agent.pk)
    assert row["cost"] == charged and row["uncached"] == uncached and row["savings"] == uncached - charged
    assert row["savings"] > 0 and row["hit_percent"] > 80
    assert 'id="cache-savings"' in resp.content.decode() and f"{row['hit_percent']}%" in resp.content.decode()
