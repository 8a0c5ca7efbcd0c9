"""The demo step leaves the inbox full (and is idempotent); the approval-latency bench runs."""

from __future__ import annotations

import io

import pytest

from agentops.demo.context import DemoContext
from agentops.escalations import demo as escalation_demo
from agentops.escalations.models import Escalation
from runs.models import Agent
from tests.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_demo_step_leaves_four_pending_escalations_and_is_idempotent(tenant, members, prices):
    out = io.StringIO()
    ctx = DemoContext(tenants={"acme": tenant}, users={"acme": members}, api_keys={}, stdout=out, redis_ok=True,
                      base_url="http://127.0.0.1:8000")
    with workers(2):
        escalation_demo.run(ctx)
        wait_for(lambda: Escalation.objects.filter(status="pending").count() == 4, timeout=60, message="four escalations")
        escalation_demo.run(ctx)  # again: nothing new while those wait
    pending = Escalation.objects.filter(status="pending")
    assert Agent.objects.filter(tenant=tenant, name="refund-desk").count() == 1
    assert pending.count() == 4
    assert sorted(pending.values_list("tool_name", flat=True)) == ["escalate_to_human", "issue_refund", "issue_refund", "send_email"]
    assert "pending in acme's inbox" in out.getvalue()


def test_approval_latency_bench_reports_percentiles(agent):
    from agentops.escalations.bench import approval_latency

    figures = approval_latency(stdout=io.StringIO(), runs=3, workers=1, preload=1)
    assert figures["samples"] == 3 and 0 < figures["p50_ms"] <= figures["p95_ms"]
