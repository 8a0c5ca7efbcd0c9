# Over 400 lines: the escrow protocol (checkout, in-memory reserve, settle, return, reclaim) reads best as one module.
"""Escrow for hot caps: a tenant's shared caps serving hundreds of calls a second.

Per call, the plain hot path (budgets.services) locks the shared counter rows — user day, user
month, tenant month — twice (reserve, settle), each until a durable commit: one hot tenant is
bound by one row's lock throughput. With escrow (``TenantCaps.hot_cap_escrow``, set by staff):

* **Checkout.** A worker process (the *holder*) moves a slice of the shared counters' headroom
  into an :class:`~budgets.models.EscrowLease`, in one transaction with the same conditional
  ``UPDATE … WHERE spent + reserved + slice <= cap`` as a per-call reservation, on every counter
  the call would charge. The slice counts as ``reserved`` there, durably, until the lease closes.
* **Local reservations.** Each call then reserves against the holder's balance in memory: no
  database statement, no Reservation row. The allowed models and the run's task cap are checked
  in memory too (the policy is read at checkout; the run's task counter once per lease and run).
  Settling (``budgets_settle_local``, one statement) writes the ledger row, the run's totals, a
  rollup row sharded by lease, the run's task counter and the lease's ``spent`` — no shared row.
* **One call in flight per lease.** A holder is one RQ work horse, which runs one job, whose
  model calls run one after another; and a second call while one is open on the lease reserves
  per call (a durable row). So when a holder dies, at most one call of its lease is unrecorded.
  The lease row carries the largest worst case it let a call reserve (``max_call``, written at
  checkout and when a larger call or another run comes along, never per call) and the run.
* **Close.** On return (the job ends, the worker stops, the lease sits idle ``IDLE_S``) or when
  the reconciler reclaims an expired lease (a crashed or stalled holder), ``budgets_escrow_close2``
  moves what the lease's calls settled into the counters' ``spent`` and frees the rest. A
  reclaim first charges the call the holder may have had in flight at ``max_call`` (bounded by
  the slice's unspent part and the run's task headroom) as an ``unknown_outcome`` ledger entry.
  The trade: a crash *between* calls overcharges by at most one worst-case call — the bound the
  per-call path has for a crash *during* a call (its open reservation is charged its worst
  case). A holder that stalled past its lease and then settles its call finds the lease closed:
  the reclaim's charge stands for that call (``late_settled``), once.
* **Slices shrink as the cap nears**: a slice is ``min(CALLS_PER_SLICE × the call's worst case,
  MAX_SLICE, headroom / (SHARE × (open leases + 1)))``. When that is below ``EDGE`` × the call's
  worst case the checkout refuses and the call takes the per-call path, whose conditional
  UPDATE sees every outstanding slice as reserved — so the call that would overrun is refused.

Why it cannot overspend: every counter keeps ``spent + reserved <= cap`` (slices are reserved
money), and a lease never lets its calls reserve more than its amount: the holder alone reserves
against it, under a lock, and the lease's spend (settled calls + the reclaim charge) never
exceeds its amount. A holder reserves locally only while its lease has at least half its term
left by its own clock (else it renews it first, in the database); the reconciler reclaims only
expired leases, so a stalled holder can let at most its one in-flight call through after the
reclaim — the call the reclaim charged.

Scopes: the lease covers the scopes many workers share (user day, user month — of the run's user,
when there is one — and tenant month), all with the same amount, since every call reserves the
same amount against each. The per-task cap stays per call: one worker drives a run at a time,
so its row is never hot. PostgreSQL only: the portable (SQLite) path never uses escrow.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from budgets.alerts import alert_counters
from budgets.models import TASK_WINDOW, CapCounter, EscrowLease
from budgets.policy import cap_policy

log = logging.getLogger(__name__)

MAX_SLICE = Decimal("5")  # USD: the most one holder takes at once
CALLS_PER_SLICE = 200  # a slice aims to cover this many worst-case calls: one checkout per ~200 calls
SHARE = 4  # a slice is at most 1 / (SHARE × holders) of the headroom left
EDGE = 4  # below EDGE worst-case calls per slice, calls reserve per call

clock = time.monotonic  # tests may replace it (idle timing)


@dataclass
class Lease:
    id: int
    tenant_id: int
    user_id: int | None
    day: date
    balance: Decimal  # what calls may still reserve against this lease, locally
    expires_at: datetime
    used_at: float
    max_call: Decimal = Decimal(0)  # as on the lease row: the largest call it may have in flight
    run_id: int | None = None  # as on the lease row: the run a reclaim charges
    model: str = ""
    open: dict[int, tuple[int, Decimal]] = field(default_factory=dict)  # local seq → (run, amount), in flight
    policies: dict[tuple[int | None, int | None], Any] = field(
        default_factory=dict
    )  # (agent, key) → CapPolicy
    tasks: dict[int, Decimal] = field(
        default_factory=dict
    )  # run → its task counter's spent + reserved + in flight
    seq: int = 0


class Holder:
    """One process's leases. A forked child starts with none (see :func:`holder`)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.name = f"{socket.gethostname()[:60]}:{self.pid}:{uuid.uuid4().hex[:8]}"
        self.leases: dict[tuple[int, int | None, date], Lease] = {}
        self.flags: dict[int, bool] = {}
        self.key_users: dict[int, int | None] = {}
        self.lock = threading.RLock()
        self.backend_pid: int | None = None  # the PostgreSQL session the leases' balances were kept in


_HOLDER: Holder | None = None


@functools.cache
def db_vendor() -> str:
    """The default database's vendor: fixed for the process, read on every call's reserve and settle
    (``connection.vendor`` is a lookup through the connection proxy each time)."""
    return connections[DEFAULT_DB_ALIAS].vendor


def holder() -> Holder:
    global _HOLDER
    if _HOLDER is None or _HOLDER.pid != os.getpid():
        _HOLDER = Holder()  # a fork's parent keeps (and returns) its own leases
    return _HOLDER


def lease_seconds() -> int:
    return int(getattr(settings, "BUDGETS_ESCROW_LEASE_S", 60))


def note_flag(tenant_id: int, on: bool) -> None:
    """What the last reserve (``budgets_reserve4``) said of the tenant's ``hot_cap_escrow``."""
    holder().flags[tenant_id] = bool(on)


def _enabled(h: Holder, tenant_id: int) -> bool:
    # Learnt from the previous reserve's answer, so the flag costs no statement of its own: the
    # first call of a process for a tenant reserves per call, the next ones use a slice.
    return h.flags.get(tenant_id, False)


def _user_of(h: Holder, run: Any) -> int | None:
    """The user whose caps apply: the submitter, else the API key's creator (as budgets_reserve4)."""
    if run.submitted_by_id:
        return int(run.submitted_by_id)
    key = getattr(run, "api_key_id", None)
    if not key:
        return None
    if key not in h.key_users:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT created_by_id FROM tenants_apikey WHERE id = %s AND tenant_id = %s",
                [key, run.tenant_id],
            )
            row = cur.fetchone()
        h.key_users[key] = row[0] if row else None
    return h.key_users[key]


def take(
    *, run: Any, amount: Decimal, day: date, now: datetime, model: str, fallback_model: str | None = None
) -> tuple[Lease, int, Decimal] | None:
    """Reserve ``amount`` in memory against this process's lease for the run's shared caps,
    checking out or topping up a slice when needed: ``(lease, seq, the run's task cap)``, or ``None`` to reserve per
    call (escrow off, at the edge, a call already in flight on the lease, a model not allowed or
    the run's task cap reached — the per-call path then gives the exact answer)."""
    h = holder()
    if db_vendor() != "postgresql" or not _enabled(h, run.tenant_id):
        return None
    user = _user_of(h, run)
    with h.lock:
        _forget_after_reconnect(h)
        _return_idle(h, now)
        key = (run.tenant_id, user, day)
        lease = h.leases.get(key)
        if lease is not None and lease.open:
            return None  # one call in flight per lease: what a reclaim charges covers exactly one
        if (
            lease is not None
            and lease.expires_at - now < timedelta(seconds=lease_seconds() / 2)
            and not _renew(lease, now)
        ):
            del h.leases[key]  # reclaimed while this holder stalled
            lease = None
        if lease is None or lease.balance < amount:
            lease = _checkout(h, run, user, day, amount, model, lease, now)
            if lease is None:
                return None
        policy = _policy(lease, run)
        if not all(policy.allows(m) for m in (model, fallback_model) if m):
            return None
        used = _task_used(lease, run.pk)
        if used + amount > policy.caps["task"]:
            return None
        if (run.pk, model) != (lease.run_id, lease.model) or amount > lease.max_call:
            # What a reclaim would charge: written when it changes, never per call.
            n = EscrowLease.unscoped.filter(pk=lease.id, status="open", expires_at__gt=now).update(
                run_id=run.pk, model=model[:100], max_call=max(amount, lease.max_call)
            )
            if not n:
                del h.leases[key]
                return None
            lease.run_id, lease.model, lease.max_call = run.pk, model[:100], max(amount, lease.max_call)
        lease.balance -= amount
        lease.tasks[run.pk] = used + amount
        lease.seq += 1
        lease.open[lease.seq] = (run.pk, amount)
        lease.used_at = clock()
        return lease, lease.seq, policy.caps["task"]


def _policy(lease: Lease, run: Any) -> Any:
    key = (run.agent_id, getattr(run, "api_key_id", None))
    if key not in lease.policies:
        lease.policies[key] = cap_policy(run.tenant_id, run.submitted_by_id, run.agent_id, key[1])
    return lease.policies[key]


def _task_used(lease: Lease, run_id: int) -> Decimal:
    """The run's task counter (spent + reserved) as this holder knows it: read once per lease and
    run; then kept in memory (one worker drives a run; its per-call reservations forget it)."""
    if run_id not in lease.tasks:
        row = (
            CapCounter.unscoped.filter(
                tenant_id=lease.tenant_id, scope="task", subject_id=run_id, window_start=TASK_WINDOW
            )
            .values_list("spent", "reserved")
            .first()
        )
        lease.tasks[run_id] = (row[0] + row[1]) if row else Decimal(0)
    return lease.tasks[run_id]


def forget_task(run_id: int) -> None:
    """The run reserved per call (a durable change to its task counter): re-read it next time."""
    h = holder()
    with h.lock:
        for lease in h.leases.values():
            lease.tasks.pop(run_id, None)


def _forget_after_reconnect(h: Holder) -> None:
    """A new database session may follow a PostgreSQL crash or a failover, after which the
    database may not hold what this holder last saw (a failover to an asynchronous standby can
    lose commits): its balances are no longer trusted. The leases are dropped, not closed; the
    reconciler reclaims them once they expire (charging each one's possible call in flight)."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    pid = db.connection.pgconn.backend_pid
    if h.backend_pid != pid:
        if h.leases:
            log.warning("escrow leases dropped: new database session", extra={"leases": len(h.leases)})
        h.leases.clear()
        h.backend_pid = pid


def _checkout(
    h: Holder,
    run: Any,
    user: int | None,
    day: date,
    amount: Decimal,
    model: str,
    lease: Lease | None,
    now: datetime,
) -> Lease | None:
    caps = cap_policy(run.tenant_id, run.submitted_by_id, run.agent_id, getattr(run, "api_key_id", None)).caps
    want = min(MAX_SLICE, amount * CALLS_PER_SLICE)
    expires = now + timedelta(seconds=lease_seconds())
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "SELECT * FROM budgets_escrow_checkout2(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                lease.id if lease else None,
                run.tenant_id,
                h.name,
                user,
                day,
                caps["user_day"],
                caps["user_month"],
                caps["tenant_month"],
                want,
                amount * EDGE,
                SHARE,
                now,
                expires,
                run.pk,
                model[:100],
                max(amount, lease.max_call) if lease else amount,
            ],
        )
        lease_id, added, _room = cur.fetchone()
    key = (run.tenant_id, user, day)
    if lease is not None and lease_id is None:
        h.leases.pop(key, None)  # closed by the reconciler: start a new one
        return _checkout(h, run, user, day, amount, model, None, now)
    if not added:
        if lease is not None and not lease.open:
            close(
                lease.id, now=now
            )  # at the edge: give back the crumbs so per-call reservations can use them
            h.leases.pop(key, None)
        return None
    if lease is None:
        lease = Lease(
            id=lease_id,
            tenant_id=run.tenant_id,
            user_id=user,
            day=day,
            balance=Decimal(0),
            expires_at=expires,
            used_at=clock(),
        )
        h.leases[key] = lease
    lease.balance += Decimal(added)
    lease.expires_at = expires
    lease.run_id, lease.model, lease.max_call = run.pk, model[:100], max(amount, lease.max_call)
    return lease


def _renew(lease: Lease, now: datetime) -> bool:
    expires = now + timedelta(seconds=lease_seconds())
    n = EscrowLease.unscoped.filter(pk=lease.id, status="open", expires_at__gt=now).update(expires_at=expires)
    if n:
        lease.expires_at = expires
    return bool(n)


def settled(lease_id: int, seq: int, cost: Decimal, *, late: bool = False) -> None:
    """A call of this holder's lease settled at ``cost`` (0 when released): the rest is free
    again. ``late``: the lease was reclaimed meanwhile, so it is dropped."""
    h = holder()
    with h.lock:
        for key, lease in list(h.leases.items()):
            if lease.id == lease_id:
                run_amount = lease.open.pop(seq, None)
                if run_amount is not None:
                    run_id, amount = run_amount
                    lease.balance += amount - cost
                    if run_id in lease.tasks:
                        lease.tasks[run_id] -= amount - cost
                if late:
                    del h.leases[key]
                return


def close(
    lease_id: int, *, now: datetime | None = None, expired_only: bool = False
) -> dict[str, Decimal] | None:
    """Close one lease (``budgets_escrow_close``); ``None`` when it was closed already (or, with
    ``expired_only``, has not expired). Calls still open stay reserved as plain reservations."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT * FROM budgets_escrow_close2(%s, %s, %s)", [lease_id, now, expired_only])
        rows = cur.fetchall()
        tenant_id = (
            EscrowLease.unscoped.filter(pk=lease_id).values_list("tenant_id", flat=True).first()
            if rows
            else None
        )
    if not rows:
        return None
    alert_counters(tenant_id=int(tenant_id), counters=[r[:5] for r in rows])  # type: ignore[arg-type]
    return {"spent": Decimal(rows[0][5]), "freed": Decimal(rows[0][6]), "charged": Decimal(rows[0][7])}


def return_all(*, now: datetime | None = None) -> int:
    """Return every lease this process holds (job end, shutdown). Safe to call at any time."""
    h = holder()
    with h.lock:
        leases, h.leases = list(h.leases.values()), {}
        h.flags.clear()  # the next job learns the tenant's flag afresh from its first reserve
    n = 0
    for lease in leases:
        try:
            n += close(lease.id, now=now) is not None
        except Exception:  # the reconciler reclaims it once it expires
            log.exception("escrow lease not returned", extra={"lease": lease.id})
    return n


def _return_idle(h: Holder, now: datetime) -> None:
    idle = float(getattr(settings, "BUDGETS_ESCROW_IDLE_S", 30))
    for key, lease in list(h.leases.items()):
        if not lease.open and clock() - lease.used_at > idle:
            del h.leases[key]
            close(lease.id, now=now)


def reclaim_expired(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The reconciler's part: close leases whose holder stopped renewing them (crashed or stalled)."""
    now = now or timezone.now()
    ids = list(
        EscrowLease.unscoped.filter(status="open", expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    closed = sum(close(pk, now=now, expired_only=True) is not None for pk in ids)
    if closed:
        log.info("escrow leases reclaimed", extra={"leases": closed})
    return closed


def _at_exit() -> None:
    if _HOLDER is not None and _HOLDER.pid == os.getpid() and _HOLDER.leases:
        return_all()


atexit.register(_at_exit)
