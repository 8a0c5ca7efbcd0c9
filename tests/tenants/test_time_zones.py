"""Times in the viewer's time zone, with the zone shown: their own choice, else the tenant's, else UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tenants.models import AuditEvent, Profile, Role
from tests.runs_console.factories import AgentFactory, RunFactory

pytestmark = pytest.mark.django_db

CREATED = datetime(2026, 7, 1, 12, 0, 5, tzinfo=UTC)


def _run_page(client, tenant) -> str:  # type: ignore[no-untyped-def]
    run = RunFactory(agent=AgentFactory(tenant=tenant), created_at=CREATED)
    resp = client.get(f"/t/acme/runs/{run.pk}/")
    assert resp.status_code == 200
    return resp.content.decode()


def test_a_member_without_a_choice_sees_the_tenants_zone(tenant, members, client_for):
    client = client_for(members[Role.VIEWER])
    assert "2026-07-01 12:00:05 UTC" in _run_page(client, tenant)
    tenant.time_zone = "America/New_York"
    tenant.save()
    assert "2026-07-01 08:00:05 EDT" in _run_page(client, tenant)


def test_a_member_chooses_their_own_zone_on_the_settings_page(tenant, members, client_for):
    tenant.time_zone = "America/New_York"
    tenant.save()
    client = client_for(members[Role.VIEWER])
    page = client.get("/t/acme/profile/")
    assert page.status_code == 200 and b"The tenant&#x27;s: America/New_York" in page.content
    resp = client.post("/t/acme/profile/", {"which": "me", "me-time_zone": "Asia/Tokyo"})
    assert resp.status_code == 302
    assert Profile.objects.get(user=members[Role.VIEWER]).time_zone == "Asia/Tokyo"
    assert "2026-07-01 21:00:05 JST" in _run_page(client, tenant)
    # Back to the tenant's.
    client.post("/t/acme/profile/", {"which": "me", "me-time_zone": ""})
    assert "2026-07-01 08:00:05 EDT" in _run_page(client, tenant)


def test_an_unknown_zone_is_refused_on_the_form(tenant, members, client_for):
    client = client_for(members[Role.VIEWER])
    resp = client.post("/t/acme/profile/", {"which": "me", "me-time_zone": "Mars/Olympus_Mons"})
    assert resp.status_code == 400 and b"Select a valid choice" in resp.content
    assert not Profile.objects.filter(user=members[Role.VIEWER]).exists()
    assert client.post("/t/acme/profile/", {"which": "nobody"}).status_code == 400


def test_only_an_admin_sets_the_tenants_zone_and_it_is_audited(tenant, members, client_for):
    resp = client_for(members[Role.OPERATOR]).post("/t/acme/profile/", {"which": "tenant", "tenant-time_zone": "Europe/Paris"})
    assert resp.status_code == 403
    tenant.refresh_from_db()
    assert tenant.time_zone == "UTC"
    resp = client_for(members[Role.ADMIN]).post("/t/acme/profile/", {"which": "tenant", "tenant-time_zone": "Europe/Paris"})
    assert resp.status_code == 302
    tenant.refresh_from_db()
    assert tenant.time_zone == "Europe/Paris"
    event = AuditEvent.objects.get(action="tenant.time_zone")
    assert (event.before, event.after) == ({"time_zone": "UTC"}, {"time_zone": "Europe/Paris"})
