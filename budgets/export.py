"""The ledger's CSV export, streamed: on PostgreSQL by ``COPY (SELECT …) TO STDOUT WITH CSV`` through
psycopg 3 (the database formats every row; Python only passes bytes on), elsewhere (SQLite, the demo)
by Python's csv module. Both produce the same bytes for the same rows (tests/budgets/test_export.py):
the same columns, exact decimals, formula-looking names prefixed with ', CRLF line ends.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from budgets.models import SpendEntry
from budgets.selectors import DateRange
from budgets.subjects import subjects
from tenants.models import Tenant

EXPORT_COLUMNS = ["at", "day", "tenant", "run_id", "agent", "user", "prompt_version_id", "model", "input_tokens", "output_tokens",
                  "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "cost_usd", "is_demo", "unknown_outcome"]
CHUNK_BYTES = 64 * 1024


def ledger_csv(*, tenant: Tenant, rng: DateRange) -> Iterator[bytes]:
    """The tenant's ledger rows in the range, oldest day first, as CSV chunks."""
    if connection.vendor == "postgresql":
        return ledger_csv_copy(tenant=tenant, rng=rng)
    return (line.encode() for line in ledger_csv_rows(tenant=tenant, rng=rng))


# --- Python (any database) ---------------------------------------------------------------------

class _Echo:
    def write(self, value: str) -> str:
        return value


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # Spreadsheet formula injection: user-chosen names must never start a formula.
    if isinstance(value, str) and value[:1] in FORMULA_START:
        return "'" + value
    return value


def ledger_csv_rows(*, tenant: Tenant, rng: DateRange) -> Iterator[str]:
    """CSV lines of the tenant's ledger in the range, streamed in chunks (no full list in memory)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    agents = {a.pk: a.name for a in subjects().agents(tenant_id=tenant.pk)}
    users: dict[int, str] = {}
    qs = (
        SpendEntry.objects.for_tenant(tenant).filter(day__gte=rng.start, day__lte=rng.end).order_by("day", "id")
        .values_list("at", "day", "run_id", "agent_id", "user_id", "prompt_version_id", "model", "input_tokens", "output_tokens",
                     "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "cost", "is_demo", "unknown_outcome")
    )
    User = get_user_model()
    for row in qs.iterator(chunk_size=5000):
        at, day, run_id, agent_id, user_id, pv, model, i, o, w5, w1, r, cost, demo, unknown = row
        if user_id and user_id not in users:
            users[user_id] = User.objects.filter(pk=user_id).values_list("username", flat=True).first() or str(user_id)
        yield writer.writerow([
            at.isoformat(), day.isoformat(), tenant.slug, run_id or "", _cell(agents.get(agent_id, "")), _cell(users.get(user_id, "")),
            pv or "", _cell(model), i, o, w5, w1, r, f"{cost:f}", "1" if demo else "0", "1" if unknown else "0",
        ])


# --- PostgreSQL COPY ---------------------------------------------------------------------------

# ``_cell`` in SQL: a formula-looking name gets a ' in front. ascii() is the first character's code (0 for ''):
# integer compares, cheaper than left() against six strings.
_FORMULA_CODES = ", ".join(str(ord(c)) for c in FORMULA_START)


def _sql_cell(expr: str) -> str:
    return f"CASE WHEN ascii({expr}) IN ({_FORMULA_CODES}) THEN '''' || {expr} ELSE {expr} END"


# '' becomes NULL, an empty field, as csv writes it (COPY writes an empty string as "").
_MODEL = f"NULLIF({_sql_cell('e.model')}, '')"

# ``at`` as datetime.isoformat() writes it: date T time, the microseconds (six digits) only when non-zero, +00:00.
# Built from the timestamp's own text, a fraction of to_char's cost: with DateStyle ISO (psycopg 3 reads timestamps
# in no other, so the app runs in no other) that is 'YYYY-MM-DD HH:MI:SS[.ffffff]' with the fraction's trailing
# zeros dropped, so a non-zero multiple of 10 µs is padded back to six digits. AT TIME ZONE INTERVAL is a fixed
# offset: unlike AT TIME ZONE 'UTC' it looks no zone name up per row.
_AT_UTC = "(e.at AT TIME ZONE INTERVAL '+00:00')"
# The microseconds, NULL when 0 (nothing to pad then); date_part() parses its unit name on every call, so once.
_US = f"NULLIF(date_part('microseconds', {_AT_UTC})::bigint %% 1000000, 0)"  # seconds × 10⁶ + µs: exact in a float8
_AT = (f"CASE WHEN {_US} %% 10 = 0 THEN rpad(replace({_AT_UTC}::text, ' ', 'T'), 26, '0') "
       f"ELSE replace({_AT_UTC}::text, ' ', 'T') END || '+00:00'")


def _copy_sql() -> str:
    ledger = connection.ops.quote_name(SpendEntry._meta.db_table)
    # A user who is not a member of the tenant (any more) is not in %(users)s: named by budgets_export_user_cell
    # (migration 0013: the username, else the id, as ledger_csv_rows does), which COALESCE calls only on a miss.
    columns = [
        _AT, "e.day::text", "%(slug)s",
        "NULLIF(e.run_id, 0)", "%(agents)s::jsonb ->> e.agent_id::text",
        "CASE WHEN NULLIF(e.user_id, 0) IS NOT NULL THEN COALESCE(%(users)s::jsonb ->> e.user_id::text, budgets_export_user_cell(e.user_id)) END",
        "NULLIF(e.prompt_version_id, 0)", _MODEL,
        "e.input_tokens", "e.output_tokens", "e.cache_write_5m_tokens", "e.cache_write_1h_tokens", "e.cache_read_tokens",
        "e.cost::text", "CASE WHEN e.is_demo THEN '1' ELSE '0' END", "CASE WHEN e.unknown_outcome THEN '1' ELSE '0' END",
    ]
    # No join: a join's output has no order, so ORDER BY would sort the formatted rows (spilling to disk past
    # work_mem); alone, the ledger is read in order down its (tenant, day, id) index and nothing is sorted.
    return (
        f"COPY (SELECT {', '.join(columns)} FROM {ledger} e "  # noqa: S608 - table names are the models' own, values are parameters
        f"WHERE e.tenant_id = %(tenant)s AND e.day >= %(start)s AND e.day <= %(end)s ORDER BY e.day, e.id) "
        f"TO STDOUT WITH (FORMAT csv)"
    )


def _crlf(rows: bytes) -> bytes:
    """Whole CSV rows as PostgreSQL writes them, with each row's LF end made CRLF and line breaks inside fields
    kept. PostgreSQL quotes every field holding a quote or a line break and doubles the quotes inside, so split
    at '"' the rows alternate outside a quoted field / inside one: only the LFs outside end rows. Done in bulk
    (bytes.split/replace) rather than per row: ledger_csv_copy's row loop is then one append."""
    parts = rows.split(b'"')
    parts[::2] = [part.replace(b"\n", b"\r\n") for part in parts[::2]]
    return b'"'.join(parts)


def _names_json(names: dict[int, str]) -> str:
    """A jsonb object of export cells by id (its keys are text); empty names are left out: NULL, an empty field."""
    return json.dumps({str(pk): cell for pk, cell in names.items() if cell})


def ledger_csv_copy(*, tenant: Tenant, rng: DateRange) -> Iterator[bytes]:
    """The export as PostgreSQL formats it. Agent names (from the runs app through budgets.subjects: budgets
    does not read its tables) and the members' usernames are passed in, already made cells by ``_cell``.

    Rows end in LF, the CSV module's in CRLF: ``_crlf`` swaps them a chunk of whole rows at a time."""
    agents = {a.pk: _cell(a.name) for a in subjects().agents(tenant_id=tenant.pk)}
    members = get_user_model().objects.filter(memberships__tenant=tenant).values_list("pk", "username")
    users = {pk: _cell(username or str(pk)) for pk, username in members}
    params = {"slug": tenant.slug, "tenant": tenant.pk, "start": rng.start, "end": rng.end,
              "agents": _names_json(agents), "users": _names_json(users)}
    yield (",".join(EXPORT_COLUMNS) + "\r\n").encode()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        buf = bytearray()
        with cursor.copy(_copy_sql(), params) as copy:
            for row in copy:  # psycopg hands COPY data over a row at a time
                buf += row
                if len(buf) >= CHUNK_BYTES:
                    yield _crlf(bytes(buf))
                    buf.clear()
        if buf:
            yield _crlf(bytes(buf))
