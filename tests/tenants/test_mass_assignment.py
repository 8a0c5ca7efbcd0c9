"""Mass assignment: extra fields in a form body (tenant, a role above the actor's own, is_staff,
owners, hashes) change nothing beyond what the form declares."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from tenants import services
from tenants.models import ApiKey, Membership, Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_adding_a_member_ignores_tenant_and_staff_fields(tenant, other_tenant, members, client_for):
    newcomer = UserFactory(username="newcomer")
    body = {
        "username": "newcomer", "role": Role.VIEWER,
        "tenant": other_tenant.pk, "tenant_id": other_tenant.pk, "slug": "globex",
        "is_staff": "on", "is_superuser": "on", "user": members[Role.ADMIN].pk,
    }
    assert client_for(members[Role.ADMIN]).post("/t/acme/members/", body).status_code == 302
    assert list(Membership.objects.filter(user=newcomer).values_list("tenant__slug", "role")) == [("acme", "viewer")]
    newcomer.refresh_from_db()
    assert not newcomer.is_staff and not newcomer.is_superuser


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
    assert client.post("/t/acme/members/", {"username": user.username, "role": Role.ADMIN}).status_code == 403
    own.refresh_from_db()
    assert own.role == role


def test_the_service_refuses_granting_above_the_actors_role(tenant, members):
    operator = Membership.objects.get(tenant=tenant, user=members[Role.OPERATOR])
    UserFactory(username="newcomer")
    with pytest.raises(PermissionDenied):
        services.membership_add(tenant=tenant, actor_membership=operator, username="newcomer", role=Role.ADMIN)
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
