"""Budget writes: reserve / settle / release around every model call, the reconciler, caps and
estimates edits. (Policy lookup is budgets.policy, alerts budgets.alerts.)

Over 400 lines on purpose: the hot path's SQL, its portable (SQLite) twin and the reconciler that
finishes what they leave open are one protocol and read best side by side.

The harness calls, around each model call::

    res = reservation_open(run=run, model=m, max_tokens=n, input_tokens_bound=b)   # may raise
    ...client.messages.create(...)...
    reservation_settle(reservation=res, usage=msg.usage.model_dump(), model=msg.model)
    # or, when the call failed: reservation_release(reservation=res)

Why it cannot overrun a cap under any number of workers: each applicable cap window has one
``CapCounter`` row, and a reservation moves money into it with a single conditional
``UPDATE … SET reserved = reserved + x WHERE spent + reserved + x <= cap``. PostgreSQL re-checks
the WHERE clause against the newest row version after waiting for a concurrent writer's lock, so
two workers can never both pass on the same headroom. All counters of one call are updated in one
transaction in a fixed order (task, user_day, user_month, tenant_month — at most one row per
scope), so there are no deadlocks; if any counter refuses, the transaction rolls back and nothing
is held. The reservation row is written *before* the first counter is locked, keeping the time a
hot counter stays locked to a few statements and the commit.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from budgets import escrow
from budgets.alerts import alert_counters, alert_threshold
from budgets.models import (
    CAP_FIELDS,
    SCOPE_ORDER,
    TASK_WINDOW,
    AgentEstimate,
    AlertKind,
    CapCounter,
    CapScope,
    DailyRollup,
    EscrowLease,
    Reservation,
    ReservationStatus,
    SpendEntry,
    TenantCaps,
    UserCap,
    validate_caps,
)
from budgets.policy import cap_policy, decimal_or_none, effective_caps, effective_policy
from budgets.pricing import (
    UnknownModelPrice,
    cost_of_tokens,
    model_family,
    price_for,
    tokens_from_usage,
    worst_case_cost,
)
from budgets.subjects import subjects
from tenants.models import Membership, Tenant
from tenants.services import audit_record

log = logging.getLogger(__name__)

__all__ = [
    "CostCapExceeded",
    "ModelNotAllowed",
    "UnknownModelPrice",
    "cost_of_usage",
    "effective_caps",
    "effective_policy",
    "reconcile_reservations",
    "reservation_open",
    "reservation_release",
    "reservation_settle",
    "reservation_settle_unknown",
]

ALERT_THRESHOLDS = ((Decimal("1"), AlertKind.PCT100), (Decimal("0.8"), AlertKind.PCT80))
# Runs in these states may hold an open reservation; anything else means the call is over.
_LIVE_RUN_STATUSES = frozenset({"running"})
_CC = CapCounter._meta.db_table
_RES = Reservation._meta.db_table
_ROLL = DailyRollup._meta.db_table


class CostCapExceeded(Exception):
    """A reservation would take a cap past its limit. The run stops as ``capped: <scope>``."""
    def __init__(self, scope: str, *, limit: Decimal, needed: Decimal, available: Decimal | None = None) -> None:
        self.scope = scope
        self.limit = limit
        self.needed = needed
        self.available = available
        super().__init__(f"{scope} cost cap ${limit} reached: this call needs up to ${needed}, ${available} left.")


class ModelNotAllowed(Exception):
    def __init__(self, model: str) -> None:
        self.model = model
        super().__init__(f"Model {model!r} is not allowed for this tenant.")


# --- windows and counters -------------------------------------------------------------------


def _windows(*, tenant_id: int, run_id: int, user_id: int | None, day: date) -> list[tuple[str, int, date]]:
    """(scope, subject, window start) of every counter a call charges, in locking order."""
    month = day.replace(day=1)
    out = [(CapScope.TASK.value, run_id, TASK_WINDOW)]
    if user_id:
        out += [(CapScope.USER_DAY.value, user_id, day), (CapScope.USER_MONTH.value, user_id, month)]
    out.append((CapScope.TENANT_MONTH.value, tenant_id, month))
    assert [w[0] for w in out] == [s for s in SCOPE_ORDER if s in {w[0] for w in out}]
    return out


_RESERVE_SQL = f"""
UPDATE {_CC} SET reserved = reserved + CAST(%s AS NUMERIC), cap = CAST(%s AS NUMERIC)
WHERE tenant_id = %s AND scope = %s AND subject_id = %s AND window_start = %s
  AND spent + reserved + CAST(%s AS NUMERIC) <= CAST(%s AS NUMERIC)
RETURNING id
"""  # noqa: S608 - table names come from model Meta, values are bound parameters
_ENSURE_SQL = f"""
INSERT INTO {_CC} (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
VALUES (%s, %s, %s, %s, 0, 0, CAST(%s AS NUMERIC))
ON CONFLICT (tenant_id, scope, subject_id, window_start) DO NOTHING
"""  # noqa: S608 - table names come from model Meta, values are bound parameters
# SQLite (the portable path's home) stores decimals as binary floats: a release can leave
# reserved at -1e-19. Such dust is cleared to 0 (PostgreSQL's NUMERIC is exact and never has it).
_CHARGE_SQL = f"""
UPDATE {_CC} SET spent = spent + CAST(%s AS NUMERIC),
  reserved = CASE WHEN reserved - CAST(%s AS NUMERIC) BETWEEN -0.000001 AND 0 THEN 0 ELSE reserved - CAST(%s AS NUMERIC) END
WHERE tenant_id = %s AND scope = %s AND subject_id = %s AND window_start = %s
RETURNING spent, cap
"""  # noqa: S608 - table names come from model Meta, values are bound parameters


def _reserve_counter(cur: Any, tenant_id: int, scope: str, subject: int, window: date, amount: Decimal, cap: Decimal) -> bool:
    params = [amount, cap, tenant_id, scope, subject, window, amount, cap]
    cur.execute(_RESERVE_SQL, params)
    if cur.fetchone() is not None:
        return True
    # First call in this window, or no headroom: make sure the row exists, then try once more.
    # When another transaction inserted the row first, this waits for it to commit and inserts
    # nothing; the retried UPDATE then sees the committed row either way.
    cur.execute(_ENSURE_SQL, [tenant_id, scope, subject, window, cap])
    cur.execute(_RESERVE_SQL, params)
    return cur.fetchone() is not None


# --- the hot path -----------------------------------------------------------------------------
#
# On PostgreSQL each operation is one call of a PL/pgSQL function (migration 0003): one round
# trip, so a hot counter stays locked for microseconds plus the commit. On SQLite (the local
# demo) the same statements run from Python. ``USE_DB_FUNCTIONS`` lets tests exercise both.

USE_DB_FUNCTIONS = os.environ.get("BUDGETS_PORTABLE_PATH") != "1"


def _pg() -> bool:
    return USE_DB_FUNCTIONS and escrow.db_vendor() == "postgresql"


class _Refused(Exception):
    pass


def reservation_open(*, run: Any, model: str, max_tokens: int, input_tokens_bound: int, fallback_model: str | None = None) -> Reservation:
    """Reserve the worst-case cost of one model call against every cap that applies, atomically.

    ``fallback_model`` is the model the call may end on when the primary is overloaded: the
    amount is the worst case of the dearer of the two, and both must be allowed, so a fallback
    can never settle above what was reserved (and thus never past a cap).

    Raises UnknownModelPrice, ModelNotAllowed, or CostCapExceeded (with ``.scope``); on any of
    them nothing is held.
    """
    for name, value in (("max_tokens", max_tokens), ("input_tokens_bound", input_tokens_bound)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 10_000_000:
            raise ValueError(f"{name} must be an integer between 0 and 10,000,000")
    if fallback_model == model:
        fallback_model = None
    now = timezone.now()  # the prices in force now, and the reservation's time
    amount = worst_case_cost(price_for(model, now), input_tokens_bound=input_tokens_bound, max_tokens=max_tokens)
    if fallback_model:
        amount = max(amount, worst_case_cost(price_for(fallback_model, now), input_tokens_bound=input_tokens_bound, max_tokens=max_tokens))
    day = now.date()
    refused: tuple[str, Decimal, Decimal] | None = None
    if _pg():
        # Under an escrow lease (a hot cap, budgets.escrow): reserved in this process's memory,
        # against the slice the lease holds reserved on the shared counters — no statement.
        taken = escrow.take(run=run, amount=amount, day=day, now=now, model=model, fallback_model=fallback_model)
        if taken is not None:
            lease, seq, task_cap = taken
            reservation = _reservation(  # no row: settled by budgets_settle_local
                pk=None, tenant_id=run.tenant_id, run_id=run.pk, user_id=lease.user_id, model=model, amount=amount, day=day,
                created_at=now, escrow_lease_id=lease.id,
            )
            reservation.escrow_seq, reservation.escrow_task_cap = seq, task_cap  # type: ignore[attr-defined]
            return reservation
        # One statement: policy, allowed models, reservation row and every counter.
        with connection.cursor() as cur:
            cur.execute(
                "SELECT * FROM budgets_reserve4(NULL, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [run.tenant_id, run.pk, run.submitted_by_id, run.api_key_id, run.agent_id, model,
                 model_family(model), fallback_model, model_family(fallback_model) if fallback_model else None, amount, day, now],
            )
            res_id, user_id, r_scope, r_used, r_cap, hot = cur.fetchone()
        escrow.note_flag(run.tenant_id, hot)
        escrow.forget_task(run.pk)
        if r_scope == "model_not_allowed":
            raise ModelNotAllowed(model)
        if r_scope == "fallback_not_allowed":
            raise ModelNotAllowed(str(fallback_model))
        if res_id is None:
            refused = (r_scope, Decimal(r_cap), Decimal(r_used))
        else:
            reservation = _reservation(
                pk=res_id, tenant_id=run.tenant_id, run_id=run.pk, user_id=user_id, model=model, amount=amount, day=day, created_at=now
            )
    else:
        policy = cap_policy(run.tenant_id, run.submitted_by_id, run.agent_id, run.api_key_id)
        for m in (model, fallback_model):
            if m and not policy.allows(m):
                raise ModelNotAllowed(m)
        user_id, caps = policy.user_id, policy.caps
        try:
            with transaction.atomic():
                reservation = Reservation.objects.create(
                    tenant_id=run.tenant_id, run_id=run.pk, user_id=user_id, model=model, amount=amount, day=day, created_at=now
                )
                with connection.cursor() as cur:
                    for scope, subject, window in _windows(tenant_id=run.tenant_id, run_id=run.pk, user_id=user_id, day=day):
                        if not _reserve_counter(cur, run.tenant_id, scope, subject, window, amount, caps[scope]):
                            cur.execute(
                                f"SELECT spent + reserved FROM {_CC} WHERE tenant_id = %s AND scope = %s AND subject_id = %s AND window_start = %s",  # noqa: S608
                                [run.tenant_id, scope, subject, window],
                            )
                            got = cur.fetchone()
                            refused = (scope, caps[scope], decimal_or_none(got[0]) if got else Decimal(0))  # type: ignore[assignment]
                            raise _Refused
        except _Refused:
            pass
    if refused is not None:
        scope, cap, used = refused
        subject = {CapScope.TASK: run.pk, CapScope.TENANT_MONTH: run.tenant_id}.get(scope, user_id)  # type: ignore[call-overload]
        window = TASK_WINDOW if scope == CapScope.TASK else day if scope == CapScope.USER_DAY else day.replace(day=1)
        alert_threshold(tenant_id=run.tenant_id, scope=scope, subject_id=subject, window=window, kind=AlertKind.PCT100, value=used, cap=cap)
        raise CostCapExceeded(scope, limit=cap, needed=amount, available=max(Decimal(0), cap - used))
    return reservation


_CLOSE_SQL = f"""
UPDATE {_RES} SET status = %s, closed_at = %s WHERE id = %s AND status = 'open'
RETURNING amount, run_id, user_id, day, tenant_id, model
"""  # noqa: S608 - table names come from model Meta, values are bound parameters


def reservation_settle(*, reservation: Reservation, usage: dict[str, Any], model: str, response_id: str = "") -> SpendEntry:
    """Charge the real cost from ``usage``, free the reservation, write the ledger row and rollup,
    and add cost and tokens to the run — one transaction.

    Idempotent: settling a settled reservation returns its entry. Settling one the reconciler
    already released still records the spend — the call happened and was billed.
    ``response_id`` (the Message id) lets the reconciler tell accounted replies apart.
    """
    tokens, cost, model = _priced(reservation, usage, model)
    return _charge(reservation=reservation, tokens=tokens, cost=cost, model=model, response_id=response_id)


@dataclass
class PreparedSettle:
    """:func:`reservation_settle` as its one statement, for a caller to send in a round trip of its own
    (the harness sends it with the step's turn: issue 14). Run ``sql`` with ``params`` inside the caller's
    transaction, then hand its rows to :meth:`finish`, which returns the entry (and raises the alerts)."""

    sql: str
    params: list[Any]
    cost: Decimal  # what the entry will charge
    finish: Callable[[list[tuple[Any, ...]]], SpendEntry]


def reservation_settle_prepared(*, reservation: Reservation, usage: dict[str, Any], model: str, response_id: str = "") -> PreparedSettle | None:
    """:func:`reservation_settle`'s statement and its follow-up, or None where settling is not one
    statement (SQLite, the portable path): then call :func:`reservation_settle`."""
    if not _pg() or getattr(reservation, "escrow_entry", None) is not None:
        return None  # (an escrow call settled already: reservation_settle hands its entry back)
    tokens, cost, model = _priced(reservation, usage, model)
    sql, params, finish = _charge_statement(reservation, tokens, cost, model, (response_id or "")[:100], False, timezone.now())
    return PreparedSettle(sql=sql, params=params, cost=cost, finish=finish)


def _priced(reservation: Reservation, usage: dict[str, Any], model: str) -> tuple[Any, Decimal, str]:
    tokens = tokens_from_usage(usage)
    try:
        price = price_for(model, reservation.created_at)
    except UnknownModelPrice:
        # The reply named a model id without a price row (e.g. a new snapshot): charge the
        # reserved model's price rather than zero.
        log.warning("settling with the reserved model's price: response model has no price", extra={"model": str(model)[:100]})
        model = reservation.model
        price = price_for(model, reservation.created_at)
    return tokens, cost_of_tokens(price, tokens), model


def reservation_settle_unknown(*, reservation: Reservation) -> SpendEntry:
    """Settle a reservation whose call's outcome is unknown (the worker died during the call and
    no reply was recorded) to its worst case, as a ledger entry flagged ``unknown_outcome``.

    The API may have answered and billed the call before the crash, so the reservation's amount —
    an upper bound of what the call could cost — is charged, never zero: spend is never understated.
    The entry is flagged so finance can match it against the provider's invoice. Idempotent, and
    a reservation already settled with real usage keeps that entry (nothing is flagged).
    """
    tokens = tokens_from_usage({})
    with transaction.atomic():
        entry = _charge(reservation=reservation, tokens=tokens, cost=Decimal(reservation.amount), model=reservation.model, response_id="",
                        unknown_outcome=True)
    return entry


def _charge(*, reservation: Reservation, tokens: Any, cost: Decimal, model: str, response_id: str, unknown_outcome: bool = False) -> SpendEntry:
    now = timezone.now()
    response_id = (response_id or "")[:100]
    done = getattr(reservation, "escrow_entry", None)
    if done is not None:
        return done  # an escrow call is settled once per process (its lease's balance moved on commit)
    if _pg():
        sql, params, finish = _charge_statement(reservation, tokens, cost, model, response_id, unknown_outcome, now)
        with connection.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return finish(rows)
    found = _settle_portable(reservation, tokens, cost, model, response_id, now)
    if isinstance(found, SpendEntry) and found.pk and not hasattr(found, "_counters"):
        return found
    if unknown_outcome:
        SpendEntry.unscoped.filter(pk=found.pk).update(unknown_outcome=True)
        found.unknown_outcome = True
    alert_counters(tenant_id=reservation.tenant_id, counters=found._counters)  # type: ignore[attr-defined]
    return found


_ENTRY_FIELDS = [f.attname for f in SpendEntry._meta.concrete_fields]
_RESERVATION_FIELDS = [f.attname for f in Reservation._meta.concrete_fields]


def spend_entry(
    *, pk: int, tenant_id: int, run_id: int | None, reservation_id: int | None, response_id: str, user_id: int | None,
    model: str, tokens: Any, cost: Decimal, day: date, at: Any, unknown_outcome: bool,
) -> SpendEntry:
    """The ledger row a settle statement just wrote, as the instance it returns (no query). Built as
    Django builds a row it read (``from_db``, every field in order): a third of the keyword
    constructor's CPU, on every model call."""
    row = {
        "id": pk, "tenant_id": tenant_id, "run_id": run_id, "reservation_id": reservation_id, "response_id": response_id,
        "user_id": user_id, "agent_id": None, "prompt_version_id": None, "model": model, "input_tokens": tokens.input,
        "output_tokens": tokens.output, "cache_write_5m_tokens": tokens.cache_write_5m, "cache_write_1h_tokens": tokens.cache_write_1h,
        "cache_read_tokens": tokens.cache_read, "cost": cost, "day": day, "at": at, "is_demo": False, "unknown_outcome": unknown_outcome,
    }
    return SpendEntry.from_db(DEFAULT_DB_ALIAS, _ENTRY_FIELDS, [row[f] for f in _ENTRY_FIELDS])


def _reservation(*, pk: int | None, tenant_id: int, run_id: int, user_id: int | None, model: str, amount: Decimal, day: date,
                 created_at: Any, escrow_lease_id: int | None = None) -> Reservation:
    """An open reservation as the instance reservation_open returns (no query; ``pk`` None: reserved in
    memory against an escrow slice). Built like :func:`spend_entry`."""
    row = {
        "id": pk, "tenant_id": tenant_id, "run_id": run_id, "user_id": user_id, "model": model, "amount": amount, "day": day,
        "status": ReservationStatus.OPEN, "created_at": created_at, "closed_at": None, "escrow_lease_id": escrow_lease_id,
    }
    return Reservation.from_db(DEFAULT_DB_ALIAS, _RESERVATION_FIELDS, [row[f] for f in _RESERVATION_FIELDS])


def _charge_statement(
    reservation: Reservation, tokens: Any, cost: Decimal, model: str, response_id: str, unknown_outcome: bool, now: Any
) -> tuple[str, list[Any], Callable[[list[tuple[Any, ...]]], SpendEntry]]:
    """The settle on PostgreSQL: one PL/pgSQL call, and what turns its rows into the entry."""
    if reservation.pk is None and reservation.escrow_lease_id:
        return _charge_local(reservation, tokens, cost, model, response_id, unknown_outcome, now)

    def finish(rows: list[tuple[Any, ...]]) -> SpendEntry:
        entry_id, existing = rows[0][0], rows[0][1]
        if existing:
            return SpendEntry.unscoped.get(pk=entry_id)
        if unknown_outcome:
            SpendEntry.unscoped.filter(pk=entry_id).update(unknown_outcome=True)
        entry = spend_entry(
            pk=entry_id, tenant_id=reservation.tenant_id, run_id=reservation.run_id, reservation_id=reservation.pk,
            response_id=response_id, user_id=reservation.user_id, model=model[:100], tokens=tokens, cost=cost,
            day=reservation.day, at=now, unknown_outcome=unknown_outcome,
        )
        alert_counters(tenant_id=reservation.tenant_id, counters=[(r[2], r[3], r[4], r[5], r[6]) for r in rows])
        return entry

    return (
        "SELECT * FROM budgets_settle2(%s, 'settled', %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [reservation.pk, model[:100], cost, tokens.input, tokens.output, tokens.cache_write_5m,
         tokens.cache_write_1h, tokens.cache_read, response_id, now],
        finish,
    )


def _charge_local(
    reservation: Reservation, tokens: Any, cost: Decimal, model: str, response_id: str, unknown_outcome: bool, now: Any
) -> tuple[str, list[Any], Callable[[list[tuple[Any, ...]]], SpendEntry]]:
    """Settle a call reserved in memory against an escrow lease: one statement, no shared row.
    Idempotent within the process: once it commits, callers get ``escrow_entry`` without a statement."""

    def finish(rows: list[tuple[Any, ...]]) -> SpendEntry:
        entry_id, late = rows[0][0], rows[0][1]
        if late:  # the reclaim charged this call's worst case already: that entry stands for it
            entry = SpendEntry.unscoped.get(pk=entry_id)
        else:
            entry = spend_entry(
                pk=entry_id, tenant_id=reservation.tenant_id, run_id=reservation.run_id, reservation_id=None,
                response_id=response_id, user_id=reservation.user_id, model=model[:100], tokens=tokens, cost=cost,
                day=reservation.day, at=now, unknown_outcome=unknown_outcome,
            )
            alert_counters(tenant_id=reservation.tenant_id, counters=[(r[2], r[3], r[4], r[5], r[6]) for r in rows])

        def committed() -> None:
            # Only once the settle commits: inside the harness's step transaction it may still roll
            # back (lease lost), and the harness then settles the call again.
            escrow.settled(reservation.escrow_lease_id, reservation.escrow_seq, cost, late=late)  # type: ignore[arg-type, attr-defined]
            reservation.escrow_entry = entry  # type: ignore[attr-defined]

        transaction.on_commit(committed)
        return entry

    return (
        "SELECT * FROM budgets_settle_local(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [reservation.escrow_lease_id, reservation.tenant_id, reservation.run_id, reservation.user_id, reservation.day,
         model[:100], cost, tokens.input, tokens.output, tokens.cache_write_5m, tokens.cache_write_1h, tokens.cache_read,
         response_id, unknown_outcome, now, reservation.escrow_task_cap],  # type: ignore[attr-defined]
        finish,
    )


def _settle_portable(
    reservation: Reservation, tokens: Any, cost: Decimal, model: str, response_id: str, now: Any
) -> SpendEntry:
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_CLOSE_SQL, [ReservationStatus.SETTLED, now, reservation.pk])
            row = cur.fetchone()
            if row is None:
                existing = SpendEntry.unscoped.filter(reservation_id=reservation.pk).first()
                if existing is not None:
                    return existing
                cur.execute(f"SELECT amount, run_id, user_id, day, tenant_id, model FROM {_RES} WHERE id = %s", [reservation.pk])  # noqa: S608
                row = cur.fetchone()
                if row is None:
                    raise Reservation.DoesNotExist
                unreserve = Decimal(0)
            else:
                unreserve = Decimal(str(row[0]))
            _, run_id, user_id, day, tenant_id, _ = row
            if isinstance(day, str):
                day = date.fromisoformat(day)
        run_row = subjects().run_attribution(run_id=run_id)
        entry = SpendEntry.objects.create(
            tenant_id=tenant_id, run_id=run_id, reservation_id=reservation.pk, response_id=response_id,
            user_id=user_id, agent_id=run_row.get("agent_id"), prompt_version_id=run_row.get("prompt_version_id"),
            model=model[:100], input_tokens=tokens.input, output_tokens=tokens.output,
            cache_write_5m_tokens=tokens.cache_write_5m, cache_write_1h_tokens=tokens.cache_write_1h,
            cache_read_tokens=tokens.cache_read, cost=cost, day=day, at=now,
        )
        subjects().run_charge(run_id=run_id, cost=cost, input_tokens=tokens.prompt_total, output_tokens=tokens.output)
        counters = []
        with connection.cursor() as cur:
            _rollup_add(cur, entry)
            for scope, subject, window in _windows(tenant_id=tenant_id, run_id=run_id, user_id=user_id, day=day):
                cur.execute(_CHARGE_SQL, [cost, unreserve, unreserve, tenant_id, scope, subject, window])
                got = cur.fetchone()
                if got is None:  # only when a released reservation's counter never existed
                    cur.execute(_ENSURE_SQL, [tenant_id, scope, subject, window, None])
                    cur.execute(_CHARGE_SQL, [cost, 0, 0, tenant_id, scope, subject, window])
                    got = cur.fetchone()
                counters.append((scope, subject, window, got[0], got[1]))
    entry._counters = counters  # type: ignore[attr-defined]
    return entry


_ROLLUP_SQL = f"""
INSERT INTO {_ROLL} (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, calls, cost,
                     input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS NUMERIC), %s, %s, %s, %s, %s)
ON CONFLICT (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, shard) DO UPDATE SET
  calls = {_ROLL}.calls + excluded.calls, cost = {_ROLL}.cost + excluded.cost,
  input_tokens = {_ROLL}.input_tokens + excluded.input_tokens,
  output_tokens = {_ROLL}.output_tokens + excluded.output_tokens,
  cache_write_5m_tokens = {_ROLL}.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
  cache_write_1h_tokens = {_ROLL}.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
  cache_read_tokens = {_ROLL}.cache_read_tokens + excluded.cache_read_tokens
"""  # noqa: S608 - table names come from model Meta, values are bound parameters


def _rollup_add(cur: Any, e: SpendEntry, *, calls: int = 1) -> None:
    cur.execute(_ROLLUP_SQL, [
        e.tenant_id, e.day, e.model, e.agent_id or 0, e.user_id or 0, e.prompt_version_id or 0, e.is_demo, calls, e.cost,
        e.input_tokens, e.output_tokens, e.cache_write_5m_tokens, e.cache_write_1h_tokens, e.cache_read_tokens,
    ])


def reservation_release(*, reservation: Reservation) -> None:
    """Give a reservation's money back (the call failed or never happened). Idempotent."""
    now = timezone.now()
    if _pg() and reservation.pk is None and reservation.escrow_lease_id:
        if getattr(reservation, "escrow_entry", None) is None:
            escrow.settled(reservation.escrow_lease_id, reservation.escrow_seq, Decimal(0))
        return  # reserved in memory: the money goes back to the slice, no statement
    if _pg():
        with connection.cursor() as cur:
            cur.execute(
                "SELECT * FROM budgets_settle2(%s, 'released', '', 0, 0, 0, 0, 0, 0, '', %s)", [reservation.pk, now]
            )
            cur.fetchall()
        return
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_CLOSE_SQL, [ReservationStatus.RELEASED, now, reservation.pk])
        row = cur.fetchone()
        if row is None:
            return
        amount, run_id, user_id, day, tenant_id, _ = row
        if isinstance(day, str):
            day = date.fromisoformat(day)
        for scope, subject, window in _windows(tenant_id=tenant_id, run_id=run_id, user_id=user_id, day=day):
            cur.execute(_CHARGE_SQL, [0, amount, amount, tenant_id, scope, subject, window])


def cost_of_usage(*, model: str, usage: dict[str, Any], at: Any = None) -> Decimal:
    """Exact USD cost of a response's ``usage`` at the price in force at ``at`` (default now)."""
    return cost_of_tokens(price_for(model, at), tokens_from_usage(usage))


# --- the reconciler ---------------------------------------------------------------------------


def reconcile_reservations(*, stale_after_s: int = 600, run_id: int | None = None) -> dict[str, int]:
    """Settle or release reservations left open by crashed workers.

    A reservation is stale when its run is no longer running under a live lease, or it is older
    than ``stale_after_s``. If the run's durable message log holds an assistant turn with usage
    that no ledger row accounts for, the call did happen: it is settled from that usage.
    Otherwise the outcome is unknown: it is settled to its worst case as an ``unknown_outcome``
    ledger entry (see :func:`reservation_settle_unknown`), never released to zero. ``run_id`` limits it
    to one run (a cancel of a run no worker holds).
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after_s)
    result = {"checked": 0, "settled": 0, "unknown_outcome": 0}
    # Expired escrow leases first: their calls still open become plain reservations, handled below.
    reclaimed = escrow.reclaim_expired(now=now) if _pg() else 0
    if reclaimed:
        result["leases_reclaimed"] = reclaimed
    open_qs = Reservation.unscoped.filter(status=ReservationStatus.OPEN).exclude(
        escrow_lease_id__in=EscrowLease.unscoped.filter(status="open", expires_at__gt=now).values("pk"))  # a live holder settles its own
    if run_id is not None:
        open_qs = open_qs.filter(run_id=run_id)
    open_rows = list(open_qs.order_by("created_at")[:5000])
    live_runs = subjects().runs_live(run_ids={r.run_id for r in open_rows}, now=now)
    for res in open_rows:
        result["checked"] += 1
        if res.run_id in live_runs and res.created_at > cutoff:
            continue
        accounted = set(SpendEntry.unscoped.filter(run_id=res.run_id).exclude(response_id="").values_list("response_id", flat=True))
        msg = subjects().unaccounted_reply(run_id=res.run_id, since=res.created_at, accounted=accounted)
        if msg is not None:
            reservation_settle(reservation=res, usage=msg.usage, model=msg.model or res.model, response_id=msg.response_id)
            result["settled"] += 1
        else:
            # No reply in the log: the worker died before, during or just after the call. The
            # API may have answered and billed it, so charge the worst case, flagged for finance.
            reservation_settle_unknown(reservation=res)
            result["unknown_outcome"] += 1
    if result["settled"] or result["unknown_outcome"]:
        log.info("reservations reconciled", extra=result)
    return result


# --- caps and estimates edits (console) ---------------------------------------------------------

@transaction.atomic
def tenant_caps_set(*, tenant: Tenant, actor: Any, values: dict[str, Any]) -> TenantCaps:
    """Set the tenant's overrides (``None`` = tier default), each within the tier's limit."""
    validate_caps(tier=tenant.tier, values={k: values.get(k) for k in (*CAP_FIELDS, "max_concurrent_runs", "allowed_models")})
    caps, _ = TenantCaps.objects.select_for_update().get_or_create(tenant=tenant)
    before = {f: _s(getattr(caps, f)) for f in (*CAP_FIELDS, "max_concurrent_runs", "allowed_models")}
    for name in (*CAP_FIELDS, "max_concurrent_runs", "allowed_models"):
        setattr(caps, name, values.get(name))
    caps.save()
    after = {f: _s(getattr(caps, f)) for f in before}
    audit_record(tenant=tenant, actor=actor, action="caps.tenant", target=caps, before=before, after=after)
    return caps


@transaction.atomic
def user_cap_set(*, tenant: Tenant, actor: Any, user: Any, user_day_cost_cap: Decimal | None, user_month_cost_cap: Decimal | None) -> UserCap:
    if not Membership.objects.filter(tenant=tenant, user=user).exists():
        raise ValidationError("That user is not a member of this tenant.")
    validate_caps(tier=tenant.tier, values={"user_day_cost_cap": user_day_cost_cap, "user_month_cost_cap": user_month_cost_cap})
    cap, _ = UserCap.objects.select_for_update().get_or_create(tenant=tenant, user=user)
    before = {"user_day_cost_cap": _s(cap.user_day_cost_cap), "user_month_cost_cap": _s(cap.user_month_cost_cap)}
    cap.user_day_cost_cap, cap.user_month_cost_cap = user_day_cost_cap, user_month_cost_cap
    cap.save()
    audit_record(tenant=tenant, actor=actor, action="caps.user", target=cap, before=before,
                 after={"user": user.username, "user_day_cost_cap": _s(user_day_cost_cap), "user_month_cost_cap": _s(user_month_cost_cap)})
    return cap


def _s(v: Any) -> Any:
    return str(v) if isinstance(v, Decimal) else v


@transaction.atomic
def estimate_set(*, tenant: Tenant, actor: Any, agent: Any, values: dict[str, Any]) -> AgentEstimate:
    if agent.tenant_id != tenant.pk:
        raise ValidationError("No such agent.")
    model = values.get("model") or ""
    if model:
        price_for(model)  # refuse an unpriced model here rather than on the page
    est, created = AgentEstimate.objects.select_for_update().get_or_create(
        tenant=tenant, agent_id=agent.pk,
        defaults={k: values[k] for k in ("input_tokens", "output_tokens", "tool_calls", "tool_result_tokens", "runs_per_day")} | {"model": model},
    )
    before = None if created else {k: getattr(est, k) for k in ("model", "input_tokens", "output_tokens", "tool_calls", "tool_result_tokens", "runs_per_day")}
    for k in ("input_tokens", "output_tokens", "tool_calls", "tool_result_tokens", "runs_per_day"):
        setattr(est, k, values[k])
    est.model = model
    est.full_clean()
    est.save()
    audit_record(tenant=tenant, actor=actor, action="estimate.set", target=est, before=before,
                 after={k: getattr(est, k) for k in ("model", "input_tokens", "output_tokens", "tool_calls", "tool_result_tokens", "runs_per_day")})
    return est


@transaction.atomic
def tight_caps_set(*, tenant: Tenant, task: str = "0.02", user_day: str = "0.05", user_month: str = "0.10", tenant_month: str = "0.20") -> TenantCaps:
    """Demo / test helper: set tiny caps so live traffic trips each scope quickly."""
    caps, _ = TenantCaps.objects.get_or_create(tenant=tenant)
    before = {f: _s(getattr(caps, f)) for f in CAP_FIELDS}
    caps.task_cost_cap, caps.user_day_cost_cap = Decimal(task), Decimal(user_day)
    caps.user_month_cost_cap, caps.tenant_month_cost_cap = Decimal(user_month), Decimal(tenant_month)
    caps.save()
    audit_record(tenant=tenant, actor=None, action="caps.tight", target=caps, before=before, after={f: _s(getattr(caps, f)) for f in CAP_FIELDS})
    return caps


def counters_resync(*, tenant: Tenant) -> int:
    """Recompute every counter's ``spent`` of the current windows from the ledger (demo backfill)."""
    today = timezone.now().date()
    month = today.replace(day=1)
    n = 0
    with transaction.atomic():
        counters = CapCounter.objects.for_tenant(tenant).select_for_update().filter(window_start__in=[today, month, TASK_WINDOW])
        by_key = {(c.scope, c.subject_id, c.window_start): c for c in counters}
        ledger = SpendEntry.objects.for_tenant(tenant)
        wanted: dict[tuple[str, int, date], Decimal] = {}
        wanted[(CapScope.TENANT_MONTH, tenant.pk, month)] = ledger.filter(day__gte=month).aggregate(s=Sum("cost"))["s"] or Decimal(0)
        for row in ledger.filter(day__gte=month, user_id__isnull=False).values("user_id").annotate(s=Sum("cost")):
            wanted[(CapScope.USER_MONTH, row["user_id"], month)] = row["s"]
        for row in ledger.filter(day=today, user_id__isnull=False).values("user_id").annotate(s=Sum("cost")):
            wanted[(CapScope.USER_DAY, row["user_id"], today)] = row["s"]
        for key in by_key:
            if key[0] != CapScope.TASK and key not in wanted:
                wanted[key] = Decimal(0)
        for (scope, subject, window), spent in wanted.items():
            c = by_key.get((scope, subject, window))
            if c is None:
                CapCounter.objects.create(tenant=tenant, scope=scope, subject_id=subject, window_start=window, spent=spent)
            elif c.spent != spent:
                CapCounter.unscoped.filter(pk=c.pk).update(spent=spent)
            n += 1
    return n
