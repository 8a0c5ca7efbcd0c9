"""The ledger export: PostgreSQL's COPY path and the Python (SQLite) path give the same bytes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from budgets.export import ledger_csv, ledger_csv_copy, ledger_csv_rows
from budgets.models import SpendEntry
from budgets.selectors import DateRange
from runs.models import Agent
from tenants.models import Role

pytestmark = [pytest.mark.django_db]


def _entry(tenant, **kw):  # type: ignore[no-untyped-def]
    fields = {"tenant": tenant, "model": "claude-sonnet-4-5", "cost": Decimal("0.0075000000"), "day": date(2026, 3, 2),
              "at": datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC), "input_tokens": 1000, "output_tokens": 20}
    return SpendEntry.objects.create(**(fields | kw))


@pytest.fixture
def ledger(tenant, other_tenant, members):  # type: ignore[no-untyped-def]
    formula = Agent.objects.create(tenant=tenant, name="=HYPERLINK(\"x\")", system_prompt="x")
    plain = Agent.objects.create(tenant=tenant, name="support, \"tier 1\"", system_prompt="x")
    foreign = Agent.objects.create(tenant=other_tenant, name="globex-agent", system_prompt="x")
    gone = get_user_model().objects.create(username="gone")
    gone_id = gone.pk
    _entry(tenant, agent_id=formula.pk, user=members[Role.FINANCE], run_id=7, prompt_version_id=3)
    _entry(tenant, agent_id=plain.pk, at=datetime(2026, 3, 2, 11, 0, 0, tzinfo=UTC), cost=Decimal("123456.0000000001"), is_demo=True)
    _entry(tenant, agent_id=foreign.pk, model="-model\nwith a line break", unknown_outcome=True, cost=Decimal("0E-10"))
    _entry(tenant, agent_id=None, user=gone, model="@sum", run_id=0, day=date(2026, 3, 31), at=datetime(2026, 3, 31, 23, 59, 59, 1, tzinfo=UTC))
    gone.delete()  # SET_NULL: the ledger row keeps no user
    _entry(tenant, day=date(2026, 4, 1))  # outside the range
    _entry(other_tenant, agent_id=foreign.pk)  # another tenant's
    return gone_id


def test_copy_and_python_exports_are_the_same_bytes(tenant, ledger):
    rng = DateRange(start=date(2026, 3, 1), end=date(2026, 3, 31))
    python = "".join(ledger_csv_rows(tenant=tenant, rng=rng)).encode()
    copied = b"".join(ledger_csv_copy(tenant=tenant, rng=rng))
    assert copied == python
    rows = list(csv.reader(io.StringIO(python.decode(), newline="")))
    assert len(rows) == 5 and rows[0][0] == "at"
    assert rows[1][0] == "2026-03-02T10:00:00.123456+00:00" and rows[2][0] == "2026-03-02T11:00:00+00:00"
    assert rows[1][4] == "'=HYPERLINK(\"x\")" and rows[2][4] == "support, \"tier 1\"" and rows[3][4] == ""  # another tenant's agent: no name
    assert rows[2][13] == "123456.0000000001" and rows[3][7] == "'-model\nwith a line break"
    assert {r[2] for r in rows[1:]} == {"acme"}


def test_the_view_streams_the_copy_path_on_postgresql(tenant, ledger, members, client_for):
    resp = client_for(members[Role.FINANCE]).get("/t/acme/spend/export.csv?start=2026-03-01&end=2026-03-31")
    assert resp.status_code == 200 and resp.streaming
    rng = DateRange(start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert b"".join(resp.streaming_content) == b"".join(ledger_csv(tenant=tenant, rng=rng))
    assert b"".join(ledger_csv(tenant=tenant, rng=rng)) == "".join(ledger_csv_rows(tenant=tenant, rng=rng)).encode()
