"""The spend charts say something: scaled to the spend with the cap marked, values on small bars,
one colour per model on every chart, a legend even for one series."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from budgets import selectors
from budgets.charts import CAP_COLOUR, model_colours
from budgets.models import DailyRollup

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 15)


def _spend(tenant, day: date, model: str, cost: str) -> None:  # type: ignore[no-untyped-def]
    DailyRollup.objects.create(tenant=tenant, day=day, model=model, cost=Decimal(cost), calls=1)


def test_the_month_chart_is_scaled_to_the_spend_and_notes_a_far_cap(tenant):
    _spend(tenant, date(2026, 3, 2), "claude-sonnet-4-5", "41.00")
    proj = selectors.projection(tenant=tenant, today=TODAY, cap=Decimal("5000"))
    layout = proj["figure"]["layout"]
    top = layout["yaxis"]["range"][1]
    assert float(proj["projected"]) <= top < 200  # $41 spent, ~$85 projected: not a flat line under a $5,000 axis
    assert not layout.get("shapes")
    assert "cap $5,000.00" in layout["annotations"][0]["text"] and "off the scale" in layout["annotations"][0]["text"]
    assert layout["showlegend"] is True


def test_a_cap_within_reach_is_a_marked_line(tenant):
    _spend(tenant, date(2026, 3, 2), "claude-sonnet-4-5", "60.00")
    layout = selectors.projection(tenant=tenant, today=TODAY, cap=Decimal("100"))["figure"]["layout"]
    (shape,) = layout["shapes"]
    assert shape["y0"] == shape["y1"] == 100 and shape["line"]["color"] == CAP_COLOUR
    assert layout["annotations"][0]["text"] == "cap $100.00"
    assert layout["yaxis"]["range"][1] > 100


def test_small_utilisation_bars_carry_their_value(tenant):
    rows = [{"label": "Tenant month", "who": "Acme", "percent": 2.0, "spent": Decimal("20"), "reserved": Decimal("0"), "cap": Decimal("1000")}]
    bar = selectors.utilisation_figure(rows)["data"][0]
    assert bar["text"] == ["2.0% · $20.00 of $1,000.00"] and bar["textposition"] == "auto"  # outside a short bar


def test_a_model_has_one_colour_on_every_chart_and_a_single_series_has_a_legend(tenant, other_tenant):
    _spend(tenant, date(2026, 3, 2), "claude-sonnet-4-5", "1.00")
    _spend(other_tenant, date(2026, 3, 2), "claude-sonnet-4-6", "5.00")
    _spend(other_tenant, date(2026, 3, 3), "claude-sonnet-4-5", "1.00")
    rng = selectors.DateRange(date(2026, 3, 1), TODAY)
    colours = model_colours()
    assert colours["claude-sonnet-4-5"] != colours["claude-sonnet-4-6"]
    one = selectors.spend_by_day(tenant=tenant, rng=rng, by="model")["figure"]
    both = selectors.spend_by_day(tenant=None, rng=rng, by="model")["figure"]
    colour = {t["name"]: t["marker"]["color"] for t in both["data"]}
    assert one["data"][0]["marker"]["color"] == colour["claude-sonnet-4-5"] == colours["claude-sonnet-4-5"]
    assert colour["claude-sonnet-4-6"] == colours["claude-sonnet-4-6"]
    assert len(one["data"]) == 1 and one["layout"]["showlegend"] is True


def test_backfilled_demo_history_is_not_linked_as_a_run(tenant, members, client_for):
    from budgets.bench import fill_ledger
    from runs.models import Run
    from tests.runs_console.factories import AgentFactory

    AgentFactory(tenant=tenant, name="support")
    fill_ledger(tenant=tenant, rows=50, days=5, runs=3, is_demo=True)
    html = client_for(members["finance"]).get("/t/acme/spend/").content.decode()
    assert html.count('class="demo-history"') == 3 and "/t/acme/runs/" not in html.split("Most expensive runs")[1].split("</table>")[0]
    demo_run = Run.objects.for_tenant(tenant).first()
    page = client_for(members["admin"]).get(f"/t/acme/runs/{demo_run.pk}/").content.decode()
    assert 'id="demo-history"' in page and "never executed" in page
