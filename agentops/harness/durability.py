"""Where the harness pays for a durable commit, and where it does not need to.

A durable commit (WAL fsync) costs ~3.4 ms p50 / ~13 ms p99 on the reference machine, more
than the rest of a step. The harness therefore makes a commit durable exactly where losing it
could cost money or repeat an effect outside the database:

* the cost reservation, before a paid model call (budgets commits it synchronously);
* the ToolCall "started" row, before a ``write`` or ``irreversible`` tool runs.

Checkpoints in between (the persisted turn, spans, events, results of read-only tools) commit
with ``synchronous_commit = off``. PostgreSQL's WAL is sequential, so the next durable commit
flushes them too; a database crash can lose only the last few hundred milliseconds of such
checkpoints, and the run then redoes those steps from the durable log: read-only tools run
again, and a lost model turn is paid for by its still-open reservation, which the reconciler
settles conservatively. Nothing irreversible happens twice.
"""

from __future__ import annotations

from django.db import connection


def relax_commit() -> None:
    """Call first inside ``transaction.atomic()``: this transaction need not wait for fsync."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET LOCAL synchronous_commit = off")
