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
from tests.factories import MembershipFactory, UserFactory

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


@pytest.fixture
def tricky_ledger(tenant, other_tenant, members):  # type: ignore[no-untyped-def]
    """Rows whose cells test every rule the two paths must agree on: quoting, line breaks inside a field,
    formula prefixes, empty and missing names, users outside the tenant, and microseconds of every shape."""
    User = get_user_model()
    names = ["line\nbreak", "\rcarriage first", "crlf\r\ninside", "tab\tinside", "+plus", "@at", "-minus", "\tfirst",
             "quote \"x\", comma", "", "émile"]
    agents = [Agent.objects.create(tenant=tenant, name=n, system_prompt="x") for n in names]
    MembershipFactory(tenant=tenant, role=Role.VIEWER, user=UserFactory(username="=cmd|' /C calc'!A0"))
    odd = MembershipFactory(tenant=tenant, role=Role.VIEWER, user=UserFactory(username="o\"brien, pat\nnext")).user
    outsider = User.objects.create(username="-outsider\r\nline")  # not a member: looked up row by row
    globex = User.objects.create(username="globex-user")
    MembershipFactory(tenant=other_tenant, role=Role.VIEWER, user=globex)
    blank = User.objects.create(username="")  # no username: the id is written
    users = [None, members[Role.FINANCE], odd, outsider, globex, blank,
             User.objects.get(username="=cmd|' /C calc'!A0")]
    models = ["claude-sonnet-4-5", "model\nwith LF", "model\r\nwith CRLF", "=1+1", "\"quoted\"", "a,b", "", "\rCR", "ü-model"]
    micros = [0, 123456, 120000, 10, 999999, 500000, 1]
    for i in range(max(len(agents), len(users), len(models), len(micros)) * 2):
        _entry(tenant, agent_id=agents[i % len(agents)].pk if i % 5 else None, user=users[i % len(users)],
               model=models[i % len(models)], run_id=(0, None, 41)[i % 3], prompt_version_id=(None, 0, 9)[i % 3],
               day=date(2026, 3, 1 + i % 28), at=datetime(2026, 3, 1 + i % 28, i % 24, i % 60, i % 60, micros[i % len(micros)], tzinfo=UTC),
               cost=Decimal(i) / Decimal(7), input_tokens=i * 1000003, is_demo=bool(i % 2), unknown_outcome=bool(i % 3))
    _entry(tenant, agent_id=agents[0].pk, day=date(2026, 3, 5), at=datetime(2026, 3, 5, tzinfo=UTC))  # same day: by id
    return agents


def _both(tenant):  # type: ignore[no-untyped-def]
    rng = DateRange(start=date(2026, 3, 1), end=date(2026, 3, 31))
    return "".join(ledger_csv_rows(tenant=tenant, rng=rng)).encode(), b"".join(ledger_csv_copy(tenant=tenant, rng=rng))


@pytest.mark.parametrize("chunk_bytes", [64 * 1024, 1])  # one chunk for all rows; a chunk per row
def test_tricky_rows_are_the_same_bytes(tenant, tricky_ledger, chunk_bytes, monkeypatch):
    monkeypatch.setattr("budgets.export.CHUNK_BYTES", chunk_bytes)
    python, copied = _both(tenant)
    assert copied == python
    rows = list(csv.reader(io.StringIO(python.decode(), newline="")))
    assert len(rows) == 1 + SpendEntry.objects.for_tenant(tenant).count()
    ats = {r[0] for r in rows[1:]}
    assert {"2026-03-01T00:00:00+00:00", "2026-03-02T01:01:01.123456+00:00", "2026-03-03T02:02:02.120000+00:00",
            "2026-03-04T03:03:03.000010+00:00", "2026-03-07T06:06:06.000001+00:00"} <= ats
    cells = {c for r in rows for c in r}
    assert {"line\nbreak", "'\rcarriage first", "crlf\r\ninside", "'\tfirst", "quote \"x\", comma", "'+plus", "'@at", "'-minus"} <= cells
    assert {"'=cmd|' /C calc'!A0", "o\"brien, pat\nnext", "'-outsider\r\nline", "globex-user"} <= cells
    assert {"model\r\nwith CRLF", "'=1+1", "\"quoted\"", "a,b", "'\rCR", "ü-model"} <= cells
    blank = get_user_model().objects.get(username="")
    assert str(blank.pk) in {r[5] for r in rows[1:]}
    assert python.count(b"\r\n") > len(rows)  # line breaks inside fields are kept as they are, not as row ends


def test_a_user_outside_the_tenant_is_named_row_by_row(tenant, members, other_tenant):
    """Only the tenant's members are passed in; anyone else is looked up by the query itself."""
    outsider = get_user_model().objects.create(username="@former-member")
    gone = get_user_model().objects.create(username="")
    _entry(tenant, user=outsider)
    _entry(tenant, user=members[Role.ADMIN], day=date(2026, 3, 3))
    _entry(tenant, user=gone, day=date(2026, 3, 4))
    python, copied = _both(tenant)
    assert copied == python
    rows = list(csv.reader(io.StringIO(python.decode(), newline="")))
    assert [r[5] for r in rows[1:]] == ["'@former-member", "acme-admin", str(gone.pk)]


def test_the_user_cell_function_prefixes_what_cell_prefixes(db):
    """budgets_export_user_cell (migration 0013) repeats _cell's formula characters in SQL: they must agree."""
    from django.db import connection

    from budgets.export import FORMULA_START, _cell

    names = [c + "x" for c in FORMULA_START] + ["x=", "'quoted", "émile", "0"]
    users = [get_user_model().objects.create(username=n) for n in names]
    with connection.cursor() as cursor:
        cursor.execute("SELECT budgets_export_user_cell(id) FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(id, n) ORDER BY n",
                       [[u.pk for u in users] + [0]])
        cells = [r[0] for r in cursor.fetchall()]
    assert cells == [_cell(n) for n in names] + ["0"]  # no such user: the id
