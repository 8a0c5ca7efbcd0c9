"""Bulk reject with one reason, and an admin's manual expire."""

from __future__ import annotations

import pytest

from agentops.escalations.models import Escalation, EscalationStatus
from runs.models import RunStatus
from tenants.models import AuditEvent, Role
from tests.runs_console.factories import AgentFactory, EscalationFactory, RunFactory

pytestmark = pytest.mark.django_db


def _pending(tenant, n: int) -> list[Escalation]:  # type: ignore[no-untyped-def]
    agent = AgentFactory(tenant=tenant)
    return [EscalationFactory(run=RunFactory(agent=agent, status=RunStatus.AWAITING_APPROVAL, outcome="")) for _ in range(n)]


def test_an_operator_rejects_the_selected_escalations_with_one_reason(tenant, members, client_for):
    first, second, untouched = _pending(tenant, 3)
    client = client_for(members[Role.OPERATOR])
    resp = client.post("/t/acme/escalations/bulk-reject/", {"ids": [first.pk, second.pk], "comment": "Duplicate requests from a loop."})
    assert resp.status_code == 302
    for e in (first, second):
        e.refresh_from_db()
        assert e.status == EscalationStatus.REJECTED and e.comment == "Duplicate requests from a loop."
    untouched.refresh_from_db()
    assert untouched.status == EscalationStatus.PENDING
    page = client.get("/t/acme/escalations/")
    assert b"Rejected 2 escalations." in page.content


def test_bulk_reject_needs_a_reason_and_a_selection_and_skips_what_is_decided(tenant, members, client_for, other_tenant):
    (e,) = _pending(tenant, 1)
    (foreign,) = _pending(other_tenant, 1)
    client = client_for(members[Role.OPERATOR])
    assert client.post("/t/acme/escalations/bulk-reject/", {"ids": [e.pk], "comment": ""}).status_code == 400
    assert client.post("/t/acme/escalations/bulk-reject/", {"comment": "no"}).status_code == 400
    resp = client.post("/t/acme/escalations/bulk-reject/", {"ids": [e.pk, foreign.pk], "comment": "No."}, follow=True)
    assert b"Rejected 1 escalation. 1 had already been decided or expired." in resp.content
    foreign.refresh_from_db()
    assert foreign.status == EscalationStatus.PENDING  # another tenant's id is not touched
    assert client_for(members[Role.VIEWER]).post("/t/acme/escalations/bulk-reject/", {"ids": [e.pk], "comment": "x"}).status_code == 403


def test_an_admin_expires_an_escalation_now_and_it_is_audited(tenant, members, client_for):
    (e,) = _pending(tenant, 1)
    assert client_for(members[Role.OPERATOR]).post(f"/t/acme/escalations/{e.pk}/expire/").status_code == 403
    detail = client_for(members[Role.ADMIN]).get(f"/t/acme/escalations/{e.pk}/")
    assert b'id="expire"' in detail.content
    assert b'id="expire"' not in client_for(members[Role.OPERATOR]).get(f"/t/acme/escalations/{e.pk}/").content
    admin = client_for(members[Role.ADMIN])
    resp = admin.post(f"/t/acme/escalations/{e.pk}/expire/", follow=True)
    e.refresh_from_db()
    assert e.status == EscalationStatus.EXPIRED and b"expired." in resp.content
    assert AuditEvent.objects.filter(action="escalation.expire_now", actor=members[Role.ADMIN]).count() == 1
    again = admin.post(f"/t/acme/escalations/{e.pk}/expire/", follow=True)
    assert b"no longer pending" in again.content
