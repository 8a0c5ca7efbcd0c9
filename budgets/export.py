"""The ledger's CSV export, streamed: on PostgreSQL by ``COPY (SELECT …) TO STDOUT WITH CSV`` through
psycopg 3 (the database formats every row; Python only passes bytes on), elsewhere (SQLite, the demo)
by Python's csv module. Both produce the same bytes for the same rows (tests/budgets/test_export.py):
the same columns, exact decimals, formula-looking names prefixed with ', CRLF line ends.
"""

from __future__ import annotations

import csv
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


def _cell(value: Any) -> Any:
    # Spreadsheet formula injection: user-chosen names must never start a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
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

def _safe(expr: str) -> str:
    """SQL for ``_cell``: a leading formula character gets a ' in front; '' becomes NULL (an empty field)."""
    return f"NULLIF(CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') THEN '''' || {expr} ELSE {expr} END, '')"


def _copy_sql() -> str:
    ledger = connection.ops.quote_name(SpendEntry._meta.db_table)
    users = connection.ops.quote_name(get_user_model()._meta.db_table)
    at_utc = "(e.at AT TIME ZONE 'UTC')"
    # datetime.isoformat(): microseconds only when non-zero, then the UTC offset.
    at = (f"to_char({at_utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN mod(extract(microseconds FROM {at_utc})::bigint, 1000000) = 0 "
          f"THEN '' ELSE '.' || to_char({at_utc}, 'US') END || '+00:00'")
    columns = [
        at, "to_char(e.day, 'YYYY-MM-DD')", "%(slug)s",
        "NULLIF(COALESCE(e.run_id, 0), 0)", _safe("COALESCE(a.name, '')"),
        _safe("CASE WHEN NULLIF(e.user_id, 0) IS NULL THEN '' ELSE COALESCE(u.username, e.user_id::text) END"),
        "NULLIF(COALESCE(e.prompt_version_id, 0), 0)", _safe("e.model"),
        "e.input_tokens", "e.output_tokens", "e.cache_write_5m_tokens", "e.cache_write_1h_tokens", "e.cache_read_tokens",
        "e.cost::text", "CASE WHEN e.is_demo THEN '1' ELSE '0' END", "CASE WHEN e.unknown_outcome THEN '1' ELSE '0' END",
    ]
    # Agent names come from the runs app through budgets.subjects (budgets does not read its tables):
    # they are passed in as two arrays and joined here.
    return (
        f"COPY (SELECT {', '.join(columns)} FROM {ledger} e "  # noqa: S608 - table names are the models' own, values are parameters
        f"LEFT JOIN unnest(%(agent_ids)s::bigint[], %(agent_names)s::text[]) AS a(id, name) ON a.id = e.agent_id "
        f"LEFT JOIN {users} u ON u.id = e.user_id "
        f"WHERE e.tenant_id = %(tenant)s AND e.day >= %(start)s AND e.day <= %(end)s ORDER BY e.day, e.id) "
        f"TO STDOUT WITH (FORMAT csv)"
    )


def ledger_csv_copy(*, tenant: Tenant, rng: DateRange) -> Iterator[bytes]:
    """The export as PostgreSQL formats it. libpq hands COPY data over a row at a time, each ending
    in LF; the CSV module ends rows in CRLF, so each row's last byte is swapped to keep the bytes equal
    (a line break inside a quoted field is inside the row, not at its end, and is left alone)."""
    agents = {a.pk: a.name for a in subjects().agents(tenant_id=tenant.pk)}
    params = {"slug": tenant.slug, "tenant": tenant.pk, "start": rng.start, "end": rng.end,
              "agent_ids": list(agents), "agent_names": list(agents.values())}
    yield (",".join(EXPORT_COLUMNS) + "\r\n").encode()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        buf = bytearray()
        with cursor.copy(_copy_sql(), params) as copy:
            for row in copy:
                buf += row[:-1]
                buf += b"\r\n"
                if len(buf) >= CHUNK_BYTES:
                    yield bytes(buf)
                    buf.clear()
        if buf:
            yield bytes(buf)
