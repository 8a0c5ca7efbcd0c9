"""Mass assignment: extra fields in a form body (tenant, a role above the actor's own, is_staff,
owners, hashes) change nothing beyond what the form declares."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.test import Client

from tenants import services
from tenants.models import ApiKey, Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def test_inviting_ignores_tenant_token_and_staff_fields(tenant, other_tenant, members, client_for):
    body = {
        "email": "newcomer@example.test", "role": Role.VIEWER,
        "tenant": other_tenant.pk, "tenant_id": other_tenant.pk, "slug": "globex", "token_hash": "0" * 64,
        "expires_at": "2999-01-01T00:00:00Z", "is_staff": "on", "is_superuser": "on", "invited_by": members[Role.VIEWER].pk,
    }
    assert client_for(members[Role.ADMIN]).post("/t/acme/members/", body).status_code == 302
    invitation = Invitation.unscoped.get()
    assert (invitation.tenant, invitation.role, invitation.invited_by) == (tenant, Role.VIEWER, members[Role.ADMIN])
    assert invitation.token_hash != "0" * 64 and invitation.expires_at.year < 2999


def test_accepting_ignores_staff_email_and_role_fields(tenant, members, client_for, mailoutbox):
    client_for(members[Role.ADMIN]).post("/t/acme/members/", {"email": "newcomer@example.test", "role": Role.VIEWER})
    token = re.search(r"/invite/([A-Za-z0-9_-]+)/", mailoutbox[0].body).group(1)
    browser = Client()
    browser.get(f"/invite/{token}/")
    body = {
        "username": "chosen", "password1": "a-long-new-secret", "password2": "a-long-new-secret",
        "is_staff": "on", "is_superuser": "on", "email": "attacker@example.test", "role": Role.ADMIN, "tenant": "globex",
    }
    assert browser.post("/invite/accept/", body).status_code == 302
    newcomer = get_user_model().objects.get(username="newcomer@example.test")
    assert (newcomer.email, newcomer.is_staff, newcomer.is_superuser) == ("newcomer@example.test", False, False)
    assert list(Membership.objects.filter(user=newcomer).values_list("tenant__slug", "role")) == [("acme", "viewer")]


def test_changing_a_role_touches_only_the_addressed_membership(tenant, other_tenant, members, outsider, client_for):
    viewer = Membership.objects.get(tenant=tenant, user=members[Role.VIEWER])
    body = {"role": Role.OPERATOR, "tenant": other_tenant.pk, "user": outsider.pk, "is_staff": "1", "id": 1}
    client_for(members[Role.ADMIN]).post(f"/t/acme/members/{viewer.pk}/role/", body)
    viewer.refresh_from_db()
    assert (viewer.tenant_id, viewer.user_id, viewer.role) == (tenant.pk, members[Role.VIEWER].pk, Role.OPERATOR)
    assert Membership.objects.get(user=outsider).role == Role.ADMIN
    assert not get_user_model().objects.filter(is_staff=True).exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PROMPT_EDITOR, Role.FINANCE, Role.VIEWER])
def test_a_non_admin_cannot_raise_their_own_role(tenant, members, client_for, role):
    user = members[role]
    own = Membership.objects.get(tenant=tenant, user=user)
    client = client_for(user)
    assert client.post(f"/t/acme/members/{own.pk}/role/", {"role": Role.ADMIN}).status_code == 403
    assert client.post("/t/acme/members/", {"email": user.email, "role": Role.ADMIN}).status_code == 403
    own.refresh_from_db()
    assert own.role == role


def test_the_service_refuses_granting_above_the_actors_role(tenant, members):
    operator = Membership.objects.get(tenant=tenant, user=members[Role.OPERATOR])
    with pytest.raises(PermissionDenied):
        services.invitation_create(tenant=tenant, actor_membership=operator, email="newcomer@example.test", role=Role.ADMIN)
    assert not Invitation.unscoped.exists()
    viewer = Membership.objects.get(tenant=tenant, user=members[Role.VIEWER])
    with pytest.raises(PermissionDenied):
        services.membership_change_role(tenant=tenant, actor_membership=operator, membership_id=viewer.pk, role=Role.ADMIN)
    assert not Membership.objects.filter(user__username="newcomer").exists()
    viewer.refresh_from_db()
    assert viewer.role == Role.VIEWER


def test_creating_a_key_ignores_owner_tenant_and_secret_fields(tenant, other_tenant, members, outsider, client_for):
    body = {
        "name": "k", "scopes": ["runs"], "acts_as_role": Role.VIEWER,
        "tenant": other_tenant.pk, "created_by": outsider.pk, "hashed": "0" * 64, "prefix": "deadbeef",
        "revoked_at": "2020-01-01", "is_staff": "on",
    }
    resp = client_for(members[Role.ADMIN]).post("/t/acme/api-keys/", body)
    assert resp.status_code == 200
    key = ApiKey.unscoped.get()
    assert key.tenant == tenant and key.created_by == members[Role.ADMIN]
    assert key.hashed != "0" * 64 and key.prefix != "deadbeef" and key.revoked_at is None
    assert key.acts_as_role == Role.VIEWER


def test_a_key_cannot_be_made_to_act_as_admin(tenant, members, client_for):
    resp = client_for(members[Role.ADMIN]).post("/t/acme/api-keys/", {"name": "k", "scopes": ["runs"], "acts_as_role": Role.ADMIN})
    assert resp.status_code == 400
    assert not ApiKey.unscoped.exists()
