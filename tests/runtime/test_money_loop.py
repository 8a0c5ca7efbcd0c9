"""Money around one model call, in-process: a reply that arrived is always charged."""

from __future__ import annotations

import pytest

from agentops.harness import lease
from agentops.harness.loop import drive_run
from budgets.models import Reservation, SpendEntry
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db


def test_a_reply_whose_step_is_lost_is_still_charged(agent, monkeypatch):
    """The API answered, then the step could not be persisted (another worker took the lease):
    the call was billed, so its real cost is recorded — never released to zero."""
    run = make_run(agent, "default")
    real = lease.fence_relaxed

    def fence(run_id, worker_id, **fields):  # type: ignore[no-untyped-def]
        if "iterations_inc" in fields:  # the fence of the step that persists the reply
            raise lease.LeaseLost(run_id)
        return real(run_id, worker_id, **fields)

    monkeypatch.setattr(lease, "fence_relaxed", fence)
    assert drive_run(run.pk, worker_id="w1") == "lease_lost"
    res = Reservation.objects.get(run_id=run.pk)
    assert res.status == "settled"
    entry = SpendEntry.objects.get(reservation_id=res.pk)
    assert entry.response_id and not entry.unknown_outcome and 0 < entry.cost <= res.amount
