"""Count what a piece of code costs the database: statements, transactions, and durable commits.

A *durable* commit is one that waits for the WAL to reach the disk: a transaction that wrote
something (it was assigned a transaction id) with ``synchronous_commit`` not ``off``. These are
what cost a step fsyncs (agentops/harness/durability.py says where the harness pays for one).
The figures are deterministic, whatever the machine's load, so benches print them beside times.

How each transaction is classified (PostgreSQL only; elsewhere only statements are counted):

* inside ``transaction.atomic()``: just before the commit, one query on the raw psycopg
  connection asks PostgreSQL itself — ``pg_current_xact_id_if_assigned()`` and
  ``current_setting('synchronous_commit')`` — so ``SET LOCAL synchronous_commit = off`` and
  function calls that write are seen as they are; that query is not counted;
* a statement in autocommit mode is a transaction of its own: it wrote when it is an
  ``INSERT``/``UPDATE``/``DELETE`` or calls one of budgets' PL/pgSQL writers (``budgets_*``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection

_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|MERGE|SELECT \* FROM budgets_)", re.IGNORECASE)
_TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)", re.IGNORECASE)


@dataclass
class CommitCount:
    statements: int = 0
    transactions: int = 0  # committed: read-only ones included
    writing: int = 0  # committed transactions that wrote
    durable: int = 0  # ... and waited for the WAL flush


@contextmanager
def count_commits() -> Iterator[CommitCount]:
    """Count this thread's connection's statements and commits inside the block."""
    counts = CommitCount()
    connection.ensure_connection()
    postgres = connection.vendor == "postgresql"

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        counts.statements += 1
        if not connection.in_atomic_block and not _TX_CONTROL.match(sql):
            counts.transactions += 1
            if _WRITES.match(sql):
                counts.writing += 1
                counts.durable += 1
        return execute(sql, params, many, context)

    db: Any = connection  # the default alias's wrapper; _commit is the backend's commit, below atomic()
    original = db._commit

    def commit() -> None:
        if postgres and connection.connection is not None:
            with connection.connection.cursor() as cur:  # the raw connection: not counted, not wrapped
                cur.execute(
                    "SELECT pg_current_xact_id_if_assigned() IS NOT NULL, current_setting('synchronous_commit')"
                )
                wrote, sync = cur.fetchone()
            counts.writing += int(bool(wrote))
            counts.durable += int(bool(wrote) and sync != "off")
        counts.transactions += 1
        original()

    db._commit = commit
    try:
        with connection.execute_wrapper(wrapper):
            yield counts
    finally:
        del db._commit  # back to the class's method
