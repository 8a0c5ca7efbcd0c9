"""The platform staff console: every tenant at a glance, tiers and prices; staff only."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agentops.escalations.models import EscalationStatus
from budgets.models import DailyRollup
from tenants.models import Role, WebhookDelivery
from tests.factories import UserFactory
from tests.runs_console.factories import AgentFactory, EscalationFactory, RunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff():  # type: ignore[no-untyped-def]
    return UserFactory(username="platform", is_staff=True)


def test_staff_without_a_tenant_land_on_the_staff_console(staff, client_for):
    client = client_for(staff)
    resp = client.get("/")
    assert resp.status_code == 302 and resp["Location"] == "/staff/"


def test_it_shows_each_tenants_month_runs_escalations_and_failing_webhooks(staff, client_for, tenant, other_tenant):
    now = timezone.now()
    DailyRollup.objects.create(tenant=tenant, day=timezone.localdate(now), model="claude-sonnet-4-5", cost=Decimal("41.25"), calls=3)
    DailyRollup.objects.create(tenant=tenant, day=timezone.localdate(now) - timedelta(days=40), model="claude-sonnet-4-5", cost=Decimal("99"))
    agent = AgentFactory(tenant=tenant)
    runs = [RunFactory(agent=agent) for _ in range(3)]
    EscalationFactory(run=runs[0])
    EscalationFactory(run=runs[1], status=EscalationStatus.APPROVED)
    WebhookDelivery.objects.create(tenant=tenant, event="escalation.created", status=WebhookDelivery.FAILED)
    WebhookDelivery.objects.create(tenant=tenant, event="escalation.created", status=WebhookDelivery.DELIVERED)
    WebhookDelivery.objects.create(tenant=tenant, event="escalation.created", status=WebhookDelivery.FAILED,
                                   created_at=now - timedelta(days=2))
    resp = client_for(staff).get("/staff/")
    assert resp.status_code == 200
    html = resp.content.decode()
    row = html.split('data-tenant="acme"')[1].split("</tr>")[0]
    assert '<td class="num">$41.25</td>' in row  # this month only, not the $99 of 40 days ago
    assert '<td class="num">3</td>' in row  # runs today
    assert "<strong>1</strong>" in row  # one pending escalation
    assert '<span class="error">1</span>' in row  # one failed delivery in the last day
    assert 'data-tenant="globex"' in html
    assert "claude-sonnet-4-5" in html.split('id="staff-prices"')[1]  # prices readable, edits in admin


def test_members_and_anonymous_do_not_get_the_staff_console(members, client_for):
    assert client_for(members[Role.ADMIN]).get("/staff/").status_code == 302  # to the admin login
    from django.test import Client

    assert Client().get("/staff/").status_code == 302
