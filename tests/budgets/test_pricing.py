"""Prices: every recorded response costs exactly what the published tables say."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from budgets.models import ModelPrice
from budgets.pricing import UnknownModelPrice, price_for, tokens_from_usage, worst_case_cost
from budgets.services import cost_of_usage
from tests.conftest import reference_dir

REF = reference_dir() / "anthropic_responses"

# Published USD/MTok (input, 5m write, 1h write, cache read, output), typed in from
# ../shared/reference/pricing/anthropic_pricing_notes.txt independently of the seed migration.
PUBLISHED = {
    "claude-sonnet-4-5-20250929": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15"),
    "claude-haiku-4-5-20251001": ("1", "1.25", "2", "0.10", "5"),
}


def _expected(model: str, usage: dict) -> Decimal:
    inp, w5, w1h, read, out = (Decimal(x) for x in PUBLISHED[model])
    cc = usage.get("cache_creation") or {}
    return (
        usage["input_tokens"] * inp
        + cc.get("ephemeral_5m_input_tokens", usage.get("cache_creation_input_tokens") or 0) * w5
        + cc.get("ephemeral_1h_input_tokens", 0) * w1h
        + (usage.get("cache_read_input_tokens") or 0) * read
        + usage["output_tokens"] * out
    ) / Decimal(10**6)


def _recorded():
    for path in sorted(REF.glob("*.json")):
        body = json.loads(path.read_text())
        if isinstance(body, dict) and body.get("usage"):
            yield pytest.param(body, id=path.stem)


@pytest.mark.django_db
@pytest.mark.parametrize("body", list(_recorded()))
def test_every_recorded_response_costs_the_published_price(body):
    model, usage = body["model"], body["usage"]
    if model not in PUBLISHED:
        # claude-3-sonnet-20240229 (a Bedrock recording) is not in the published excerpts:
        # it must be refused, never priced at zero.
        with pytest.raises(UnknownModelPrice):
            cost_of_usage(model=model, usage=usage)
        return
    assert cost_of_usage(model=model, usage=usage) == _expected(model, usage)


@pytest.mark.django_db
def test_the_worked_example_from_the_notes_is_exact():
    body = json.loads((REF / "cache_creation_and_read__pydantic-ai.json").read_text())
    cost = cost_of_usage(model=body["model"], usage=body["usage"])
    assert cost == Decimal("0.0024048")
    assert str(cost.normalize()) == "0.0024048"


@pytest.mark.django_db
def test_cache_writes_are_priced_by_ttl():
    usage = {"input_tokens": 10, "output_tokens": 0, "cache_creation_input_tokens": 3000,
             "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}}
    # 10*3 + 1000*3.75 + 2000*6 = 15780 per MTok
    assert cost_of_usage(model="claude-sonnet-4-5", usage=usage) == Decimal("0.01578")


@pytest.mark.django_db
def test_haiku_3_uses_the_rounded_table_not_a_multiplier():
    usage = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 1_000_000, "cache_read_input_tokens": 1_000_000}
    # table: 5m write $0.30 + read $0.03; a 1.25x/0.1x formula would say 0.3125 + 0.025
    assert cost_of_usage(model="claude-3-haiku-20240307", usage=usage) == Decimal("0.33")


@pytest.mark.django_db
def test_fable_5_1_cache_read_is_its_own_rate():
    assert cost_of_usage(model="claude-fable-5-1", usage={"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 1_000_000}) == Decimal("0.25")


@pytest.mark.django_db
@pytest.mark.parametrize("model,family", [
    ("claude-sonnet-4-5", "claude-sonnet-4-5"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-haiku-4-5", "claude-haiku-4-5"), ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("claude-opus-4-5", "claude-opus-4-5"), ("claude-opus-4-5-20251101", "claude-opus-4-5"),
    ("claude-opus-4-1", "claude-opus-4-1"), ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-opus-4-0", "claude-opus-4"), ("claude-opus-4-20250514", "claude-opus-4"),
    ("claude-sonnet-4-0", "claude-sonnet-4"), ("claude-3-haiku-20240307", "claude-3-haiku"),
    ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"), ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("claude-opus-4-6", "claude-opus-4-6"), ("claude-sonnet-4-6", "claude-sonnet-4-6"), ("claude-opus-5", "claude-opus-5"),
    ("claude-fable-5-1", "claude-fable-5-1"), ("claude-mythos-5", "claude-mythos-5"),
])
def test_model_ids_map_to_their_rows(model, family):
    assert price_for(model).model == family


@pytest.mark.django_db
@pytest.mark.parametrize("model", [
    "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-sonnet-5", "claude-fable-5-2",
    "claude-mythos-preview", "claude-3-sonnet-20240229", "claude-opus-4-9", "gpt-4o", "", "x" * 300, "claude-sonnet-4-5;drop",
])
def test_unpriced_or_unverified_models_are_refused(model):
    with pytest.raises(UnknownModelPrice):
        price_for(model)


@pytest.mark.django_db
def test_exact_id_row_wins_over_family_and_effective_dates_apply():
    from datetime import UTC, datetime

    ModelPrice.objects.create(model="claude-sonnet-4-5-20250929", input=Decimal("2"), output=Decimal("10"),
                              cache_write_5m=Decimal("2.5"), cache_write_1h=Decimal("4"), cache_read=Decimal("0.2"))
    assert price_for("claude-sonnet-4-5-20250929").input == Decimal("2")
    assert price_for("claude-sonnet-4-5").input == Decimal("3")
    old = ModelPrice.objects.get(model="claude-haiku-4-5")
    cut = datetime(2030, 1, 1, tzinfo=UTC)
    old.effective_to = cut
    old.save()
    ModelPrice.objects.create(model="claude-haiku-4-5", effective_from=cut, input=Decimal("7"), output=Decimal("9"),
                              cache_write_5m=Decimal("8"), cache_write_1h=Decimal("9"), cache_read=Decimal("1"))
    assert price_for("claude-haiku-4-5", datetime(2029, 1, 1, tzinfo=UTC)).input == Decimal("1")
    assert price_for("claude-haiku-4-5", datetime(2031, 1, 1, tzinfo=UTC)).input == Decimal("7")


@pytest.mark.django_db
def test_worst_case_prices_input_at_the_dearest_input_rate():
    p = price_for("claude-sonnet-4-5")
    # 1000 input tokens at the 1h write rate ($6) + 100 output at $15
    assert worst_case_cost(p, input_tokens_bound=1000, max_tokens=100) == Decimal("0.0075")


@pytest.mark.parametrize("usage", [{"input_tokens": -1}, {"input_tokens": "5"}, {"input_tokens": 1.5}, {"cache_creation": "x"}, "nope"])
def test_malformed_usage_is_refused(usage):
    with pytest.raises(ValueError):
        tokens_from_usage(usage)
