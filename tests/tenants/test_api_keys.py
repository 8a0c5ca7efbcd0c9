"""API keys: created with a name and scopes, shown once, stored hashed, revoked for good."""

from __future__ import annotations

import pytest

from tenants.models import ApiKey, AuditEvent, Role
from tenants.services import api_key_authenticate, api_key_create

pytestmark = pytest.mark.django_db

FORM = {"name": "billing-service", "scopes": ["runs", "spend"], "acts_as_role": Role.OPERATOR}


def test_it_creates_a_key_and_shows_it_once(tenant, members, client_for):
    client = client_for(members[Role.ADMIN])
    resp = client.post("/t/acme/api-keys/", FORM)
    assert resp.status_code == 200
    raw = resp.context["new_key"]
    assert raw.startswith("aok_") and raw in resp.content.decode()
    assert "no-store" in resp["Cache-Control"]
    key = ApiKey.objects.for_tenant(tenant).get()
    assert key.scopes == ["runs", "spend"] and key.created_by == members[Role.ADMIN]
    # Only the hash is stored; the raw key appears in no column and on no later page.
    assert key.hashed == ApiKey.hash_secret(raw) and raw not in (key.prefix, key.hashed, key.name)
    assert raw not in client.get("/t/acme/api-keys/").content.decode()
    assert api_key_authenticate(raw) == key


def test_creating_a_key_is_audited(tenant, members, client_for):
    client_for(members[Role.ADMIN]).post("/t/acme/api-keys/", FORM)
    event = AuditEvent.objects.for_tenant(tenant).get(action="apikey.create")
    assert event.after["scopes"] == ["runs", "spend"]
    assert "aok_" not in str(event.after) and event.actor == members[Role.ADMIN]


@pytest.mark.parametrize(
    "body",
    [
        {**FORM, "acts_as_role": Role.ADMIN},
        {**FORM, "scopes": []},
        {**FORM, "scopes": ["runs", "everything"]},
        {**FORM, "name": ""},
        {**FORM, "name": "   "},
        {**FORM, "name": "x" * 101},
    ],
    ids=["admin-role", "no-scopes", "unknown-scope", "no-name", "blank-name", "long-name"],
)
def test_it_refuses_a_bad_key_request(tenant, members, client_for, body):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/api-keys/", body)
    assert resp.status_code == 400
    assert not ApiKey.objects.for_tenant(tenant).exists()
    assert not AuditEvent.objects.for_tenant(tenant).exists()


def test_it_revokes_a_key(tenant, members, client_for):
    key, raw = api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="k", scopes=["runs"])
    client = client_for(members[Role.ADMIN])
    resp = client.post(f"/t/acme/api-keys/{key.pk}/revoke/")
    assert resp.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(raw) is None
    # Revoking again changes nothing and records nothing more.
    client.post(f"/t/acme/api-keys/{key.pk}/revoke/")
    assert AuditEvent.objects.for_tenant(tenant).filter(action="apikey.revoke").count() == 1
    assert "revoked" in client.get("/t/acme/api-keys/").content.decode()


def test_it_cannot_revoke_another_tenants_key(tenant, other_tenant, members, outsider, client_for):
    theirs, raw = api_key_create(tenant=other_tenant, actor=outsider, name="theirs", scopes=["runs"])
    resp = client_for(members[Role.ADMIN]).post(f"/t/acme/api-keys/{theirs.pk}/revoke/")
    assert resp.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None and api_key_authenticate(raw) == theirs


def test_revoke_refuses_get(tenant, members, client_for):
    key, _ = api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="k", scopes=["runs"])
    assert client_for(members[Role.ADMIN]).get(f"/t/acme/api-keys/{key.pk}/revoke/").status_code == 405
    key.refresh_from_db()
    assert key.revoked_at is None


def test_the_keys_page_lists_only_this_tenants_keys(tenant, other_tenant, members, outsider, client_for):
    api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="ours", scopes=["runs"])
    theirs, _ = api_key_create(tenant=other_tenant, actor=outsider, name="theirs-secret-name", scopes=["runs"])
    body = client_for(members[Role.ADMIN]).get("/t/acme/api-keys/").content.decode()
    assert "ours" in body and "theirs-secret-name" not in body and theirs.prefix not in body


def test_authenticate_refuses_malformed_keys(tenant, members):
    key, raw = api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="k", scopes=["runs"])
    for bad in ("", "aok_", raw[:-1], raw + "x", "Bearer " + raw, "aok_" + "x" * 500):
        assert api_key_authenticate(bad) is None
