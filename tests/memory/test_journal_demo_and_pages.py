"""The demo step (a refund path that failed yesterday is avoided today) and the journal's pages."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from agentops.demo import DEMO_STEPS
from agentops.demo.context import DemoContext
from agentops.memory.models import FailureEntry
from runs import journal_demo
from runs.models import Run, RunStatus
from tenants.models import AuditEvent, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_ctx(tenant, members, tier_generous):  # type: ignore[no-untyped-def]
    return DemoContext(
        tenants={"acme": tenant},
        users={"acme": members},
        api_keys={},
        stdout=io.StringIO(),
        redis_ok=False,
        base_url="http://127.0.0.1:8000",
    )


def test_the_demo_avoids_yesterdays_failed_refund_and_is_idempotent(demo_ctx, tenant):
    assert "runs.journal_demo.run" in DEMO_STEPS
    journal_demo.run(demo_ctx)
    first, second = Run.objects.for_tenant(tenant).filter(metadata__demo="journal").order_by("pk")
    entry = FailureEntry.objects.for_tenant(tenant).get()
    assert (entry.tool, entry.kind, entry.error_type, entry.subject, entry.run_id) == (
        "issue_refund",
        "refused",
        "permission_denied",
        "ACC-1002",
        first.pk,
    )
    assert (
        timezone.now() - timedelta(days=1, minutes=5)
        < entry.last_seen_at
        < timezone.now() - timedelta(hours=23)
    )
    assert first.created_at < timezone.now() - timedelta(hours=23)
    assert list(second.tool_calls.order_by("id").values_list("tool_name", flat=True)) == [
        "lookup_account",
        "escalate_to_human",
    ]
    assert second.status == RunStatus.AWAITING_APPROVAL
    assert "read the note" in demo_ctx.stdout.getvalue()
    journal_demo.run(demo_ctx)
    assert Run.objects.for_tenant(tenant).filter(metadata__demo="journal").count() == 2


def test_the_journal_pages_list_entries_and_operators_clear_them(demo_ctx, tenant, members, client_for):
    journal_demo.run(demo_ctx)
    entry = FailureEntry.objects.for_tenant(tenant).get()
    viewer = client_for(members[Role.VIEWER])
    index = viewer.get(f"/t/{tenant.slug}/memory/journal/")
    assert index.status_code == 200 and b"billing-desk" in index.content
    page = viewer.get(f"/t/{tenant.slug}/memory/journal/agents/{entry.agent_id}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "permission_denied" in body and f"/runs/{entry.run_id}/" in body and "Clear" not in body
    assert viewer.post(f"/t/{tenant.slug}/memory/journal/entries/{entry.pk}/clear/").status_code == 403
    operator = client_for(members[Role.OPERATOR])
    assert (
        "Clear</button>"
        in operator.get(f"/t/{tenant.slug}/memory/journal/agents/{entry.agent_id}/").content.decode()
    )
    resp = operator.post(f"/t/{tenant.slug}/memory/journal/entries/{entry.pk}/clear/")
    assert resp.status_code == 302
    entry.refresh_from_db()
    assert entry.cleared_at is not None and entry.cleared_by == members[Role.OPERATOR].username
    audit = AuditEvent.objects.for_tenant(tenant).get(action="journal.clear")
    assert audit.target_id == str(entry.pk) and audit.before["tool"] == "issue_refund"
    after = operator.get(f"/t/{tenant.slug}/memory/journal/agents/{entry.agent_id}/").content.decode()
    assert "cleared" in after and "Clear</button>" not in after
    # An id that is not a number, or no such entry: 404.
    assert operator.post(f"/t/{tenant.slug}/memory/journal/entries/nope/clear/").status_code == 404
    assert operator.get(f"/t/{tenant.slug}/memory/journal/agents/999999999/").status_code == 404
