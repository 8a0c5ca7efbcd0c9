"""The cost-cap hooks around every model call; the budgets app does the accounting.

reserve → (model call) → settle, or release when the call fails. A refused reservation raises
``CostCapExceeded(scope)`` before any token is spent.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from agentops.harness.durability import relax_commit

# The refusals are re-exported for the loop (``X as X`` marks them public for mypy).
from budgets.services import CostCapExceeded as CostCapExceeded
from budgets.services import ModelNotAllowed as ModelNotAllowed
from budgets.services import UnknownModelPrice as UnknownModelPrice
from budgets.services import (
    reservation_open,
    reservation_release,
    reservation_settle,
    reservation_settle_prepared,
)


def reserve(*, run: Any, model: str, max_tokens: int, input_tokens_bound: int, fallback_model: str | None = None) -> Any:
    """Reserve before the paid call. Durable by default (see agentops.harness.durability).

    ``fallback_model`` is the model the gateway falls back to on overload: the worst case of the
    dearer of the two is reserved, so the call cannot settle above its reservation.

    With ``AGENTOPS_DURABLE_RESERVATIONS=0`` the reservation commits without waiting for fsync:
    other workers still see it at once (concurrency is unaffected); only a PostgreSQL crash in
    the following few hundred milliseconds could lose it, letting one in-flight call per run
    go unrecorded. That trades ~3 ms per model call for that window.
    """

    if settings.AGENTOPS_DURABLE_RESERVATIONS:
        return reservation_open(run=run, model=model, max_tokens=max_tokens, input_tokens_bound=input_tokens_bound, fallback_model=fallback_model)
    with transaction.atomic():
        relax_commit()
        return reservation_open(run=run, model=model, max_tokens=max_tokens, input_tokens_bound=input_tokens_bound, fallback_model=fallback_model)


def settle(*, reservation: Any, usage: dict[str, Any], model: str, response_id: str = "") -> Any:
    """Settle to the exact cost; ``response_id`` lets the reconciler tell charged replies apart."""
    return reservation_settle(reservation=reservation, usage=usage, model=model, response_id=response_id)


def prepare_settle(*, reservation: Any, usage: dict[str, Any], model: str, response_id: str = "") -> Any:
    """:func:`settle` as one statement for the step's round trip (``.sql``, ``.params``, ``.cost``,
    ``.finish(rows)``), or None where it is not one statement: then call :func:`settle`."""
    return reservation_settle_prepared(reservation=reservation, usage=usage, model=model, response_id=response_id)


def release(*, reservation: Any) -> None:
    reservation_release(reservation=reservation)
