"""Money around one model call, in-process: a reply that arrived is always charged."""

from __future__ import annotations

import pytest

from agentops.harness.loop import drive_run
from agentops.llm import gateway
from budgets.models import Reservation, SpendEntry
from runs.models import Message, Run
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db


def test_a_reply_whose_step_is_lost_is_still_charged(agent, monkeypatch):
    """The API answered, then the step could not be persisted (another worker took the lease):
    the call was billed, so its real cost is recorded — never released to zero."""
    run = make_run(agent, "default")
    real = gateway.create_message

    def create_message(**kwargs):  # type: ignore[no-untyped-def]
        result = real(**kwargs)
        # Another worker took the lease while the call was in flight: the step's fence must fail.
        Run.objects.filter(pk=run.pk).update(lease_owner="w2")
        return result

    monkeypatch.setattr(gateway, "create_message", create_message)
    assert drive_run(run.pk, worker_id="w1") == "lease_lost"
    res = Reservation.objects.get(run_id=run.pk)
    assert res.status == "settled"
    entry = SpendEntry.objects.get(reservation_id=res.pk)
    assert entry.response_id and not entry.unknown_outcome and 0 < entry.cost <= res.amount
    # Nothing of the lost step landed: not the turn, nor the run's iteration.
    assert not Message.objects.filter(run=run, role="assistant").exists()
    assert Run.objects.get(pk=run.pk).iterations == 0
