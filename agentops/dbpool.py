"""Fork safety for the psycopg connection pool (``DB_POOL_MAX_SIZE``).

A forked child (RQ's work horse, a gunicorn worker after ``preload_app``) inherits the parent's
pool: its connections' sockets are shared with the parent, and its maintenance threads do not
exist in the child. The child must neither use those connections nor close them (closing sends
PostgreSQL a Terminate for the parent's session), so after a fork it forgets them, keeps the
objects referenced so that no finaliser closes them, and opens a pool of its own on first use.
"""

from __future__ import annotations

import os
from typing import Any

_inherited: list[Any] = []
_installed = False


def _forget_inherited_pools() -> None:
    # Here, not at the top: settings.py imports this module, before django.db may be loaded.
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.settings_dict.get("OPTIONS", {}).get("pool"):
            _inherited.append(conn.connection)
            conn.connection = None
    pools: dict[str, Any] = DatabaseWrapper._connection_pools  # type: ignore[attr-defined]
    _inherited.extend(pools.values())
    pools.clear()


def install() -> None:
    global _installed
    if not _installed:
        os.register_at_fork(after_in_child=_forget_inherited_pools)
        _installed = True
