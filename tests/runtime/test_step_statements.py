"""The loop's statement budget: the store interface between the harness and the runs app must not
add round trips to a step (counted with Django's CaptureQueriesContext on a whole tool-using run)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agentops.harness.loop import drive_run
from runs.models import RunStatus
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db

# Measured before the harness stopped importing runs.models (plain run / four-step refund run).
# A change that adds a statement to a step raises these on purpose, with a reason in the commit.
PLAIN_RUN_STATEMENTS = 27
# The refund run's measured pass is not all success: the warm-up pass already refunded TX-5001, so its
# issue_refund fails (deterministically) and the failure journal files it: one statement (107 -> 108).
# A run that meets no failure adds none (the plain run, and tests/memory/test_journal.py).
REFUND_RUN_STATEMENTS = 108


def _count(run) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as ctx:
        drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, (run.outcome, run.error_message)
    return len(ctx.captured_queries)


def test_a_plain_run_stays_within_its_statement_budget(agent):
    _count(make_run(agent, "default"))  # warms the per-process caches (prices, content types)
    assert _count(make_run(agent, "default")) <= PLAIN_RUN_STATEMENTS


def test_a_tool_using_run_stays_within_its_statement_budget(agent):
    _count(make_run(agent, "support_refund"))  # warm-up, as above
    assert _count(make_run(agent, "support_refund")) <= REFUND_RUN_STATEMENTS
