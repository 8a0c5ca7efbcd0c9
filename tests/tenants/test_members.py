"""Members & roles: change a role, remove; the last admin stays. (Joining is by invitation: test_invitations.py.)"""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from tenants import services
from tenants.models import AuditEvent, Membership, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _membership(user, tenant):  # type: ignore[no-untyped-def]
    return Membership.objects.get(user=user, tenant=tenant)


def test_it_lists_members_with_their_roles(tenant, members, client_for):
    resp = client_for(members[Role.ADMIN]).get("/t/acme/members/")
    assert resp.status_code == 200
    for role, user in members.items():
        assert user.username in resp.content.decode()
    assert 'value="prompt_editor" selected' in resp.content.decode()


def test_an_invitation_is_the_only_way_in(tenant, members, client_for, mailoutbox):
    """Posting a username (the removed add-by-username form) adds nobody and sends nothing."""
    newcomer = UserFactory(username="newcomer")
    resp = client_for(members[Role.ADMIN]).post("/t/acme/members/", {"username": "newcomer", "role": Role.FINANCE})
    assert resp.status_code == 400
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not AuditEvent.objects.for_tenant(tenant).exists() and not mailoutbox


def test_the_service_to_add_by_username_is_gone():
    assert not hasattr(services, "membership_add")


def test_it_changes_a_role(tenant, members, client_for):
    m = _membership(members[Role.VIEWER], tenant)
    resp = client_for(members[Role.ADMIN]).post(f"/t/acme/members/{m.pk}/role/", {"role": Role.OPERATOR})
    assert resp.status_code == 302
    m.refresh_from_db()
    assert m.role == Role.OPERATOR
    event = AuditEvent.objects.for_tenant(tenant).get(action="member.role")
    assert event.before["role"] == "viewer" and event.after["role"] == "operator"


def test_an_unchanged_role_writes_no_audit_row(tenant, members, client_for):
    m = _membership(members[Role.VIEWER], tenant)
    client_for(members[Role.ADMIN]).post(f"/t/acme/members/{m.pk}/role/", {"role": Role.VIEWER})
    assert not AuditEvent.objects.for_tenant(tenant).exists()


def test_it_refuses_an_unknown_role(tenant, members, client_for):
    m = _membership(members[Role.VIEWER], tenant)
    resp = client_for(members[Role.ADMIN]).post(f"/t/acme/members/{m.pk}/role/", {"role": "owner"})
    assert resp.status_code == 400
    m.refresh_from_db()
    assert m.role == Role.VIEWER


def test_it_removes_a_member(tenant, members, client_for):
    m = _membership(members[Role.FINANCE], tenant)
    resp = client_for(members[Role.ADMIN]).post(f"/t/acme/members/{m.pk}/remove/")
    assert resp.status_code == 302
    assert not Membership.objects.filter(pk=m.pk).exists()
    event = AuditEvent.objects.for_tenant(tenant).get(action="member.remove")
    assert event.before == {"user": "acme-finance", "role": "finance"}
    # The removed user now gets 404 for the tenant.
    assert client_for(members[Role.FINANCE]).get("/t/acme/").status_code == 404


def test_the_last_admin_cannot_be_removed(tenant, members, client_for):
    admin = members[Role.ADMIN]
    m = _membership(admin, tenant)
    resp = client_for(admin).post(f"/t/acme/members/{m.pk}/remove/", follow=True)
    assert resp.status_code == 200
    assert "You cannot remove the last admin" in resp.content.decode()
    assert Membership.objects.filter(pk=m.pk, role=Role.ADMIN).exists()
    assert not AuditEvent.objects.for_tenant(tenant).exists()


def test_the_last_admin_cannot_be_demoted(tenant, members, client_for):
    admin = members[Role.ADMIN]
    m = _membership(admin, tenant)
    resp = client_for(admin).post(f"/t/acme/members/{m.pk}/role/", {"role": Role.VIEWER}, follow=True)
    assert "at least one admin" in resp.content.decode()
    m.refresh_from_db()
    assert m.role == Role.ADMIN


def test_the_members_page_marks_the_last_admin(tenant, members, client_for):
    body = client_for(members[Role.ADMIN]).get("/t/acme/members/").content.decode()
    assert "last admin" in body


def test_an_admin_may_leave_when_another_admin_remains(tenant, members, client_for):
    second = MembershipFactory(tenant=tenant, role=Role.ADMIN, user=UserFactory(username="acme-admin2")).user
    m = _membership(second, tenant)
    resp = client_for(second).post(f"/t/acme/members/{m.pk}/remove/")
    assert resp.status_code == 302 and resp["Location"] == "/"
    assert not Membership.objects.filter(pk=m.pk).exists()


def test_an_admin_who_demotes_themselves_lands_on_home(tenant, members, client_for):
    second = MembershipFactory(tenant=tenant, role=Role.ADMIN, user=UserFactory(username="acme-admin2")).user
    m = _membership(second, tenant)
    resp = client_for(second).post(f"/t/acme/members/{m.pk}/role/", {"role": Role.VIEWER})
    assert resp.status_code == 302 and resp["Location"] == "/t/acme/"


def test_it_cannot_reach_another_tenants_membership(tenant, members, outsider, other_tenant, client_for):
    theirs = _membership(outsider, other_tenant)
    client = client_for(members[Role.ADMIN])
    assert client.post(f"/t/acme/members/{theirs.pk}/role/", {"role": Role.VIEWER}).status_code == 404
    assert client.post(f"/t/acme/members/{theirs.pk}/remove/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.ADMIN


def test_action_urls_refuse_get(tenant, members, client_for):
    m = _membership(members[Role.VIEWER], tenant)
    client = client_for(members[Role.ADMIN])
    assert client.get(f"/t/acme/members/{m.pk}/remove/").status_code == 405
    assert Membership.objects.filter(pk=m.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_admins_demoting_each_other_at_once_leave_one_admin(tenant):
    """The admin rows are locked, so concurrent demotions cannot both pass the last-admin check."""
    for round_ in range(5):
        a = MembershipFactory(tenant=tenant, role=Role.ADMIN, user=UserFactory(username=f"a{round_}"))
        b = MembershipFactory(tenant=tenant, role=Role.ADMIN, user=UserFactory(username=f"b{round_}"))
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def demote(actor: Membership, target: Membership) -> None:
            try:
                barrier.wait()
                services.membership_change_role(tenant=tenant, actor_membership=actor, membership_id=target.pk, role=Role.VIEWER)
                outcomes.append("ok")
            except ValidationError:
                outcomes.append("refused")
            finally:
                connection.close()  # a thread's connection would outlive the test database

        threads = [threading.Thread(target=demote, args=(a, b)), threading.Thread(target=demote, args=(b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["ok", "refused"]
        assert Membership.objects.filter(tenant=tenant, role=Role.ADMIN).count() == 1
        Membership.objects.filter(tenant=tenant).delete()


def test_login_lands_on_the_only_tenants_home(tenant, members, client):
    resp = client.post("/login/", {"username": "acme-viewer", "password": "correct-horse-battery"}, follow=True)
    assert resp.redirect_chain[-1][0] == "/t/acme/"
    assert resp.status_code == 200
    assert "Acme" in resp.content.decode()


def test_bad_login_says_so(tenant, members, client):
    resp = client.post("/login/", {"username": "acme-viewer", "password": "wrong"})
    assert resp.status_code == 200
    assert "did not match" in resp.content.decode()


def test_logout_ends_the_session(tenant, members, client_for):
    client = client_for(members[Role.ADMIN])
    resp = client.post("/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert client.get("/t/acme/").status_code == 302


def test_a_member_of_several_tenants_picks_one(tenant, other_tenant, members, client_for):
    user = members[Role.OPERATOR]
    MembershipFactory(tenant=other_tenant, user=user, role=Role.VIEWER)
    client = client_for(user)
    body = client.get("/").content.decode()
    assert "/t/acme/" in body and "/t/globex/" in body
    # The topbar switcher, without JavaScript, submits ?t=<slug>.
    assert client.get("/?t=globex")["Location"] == "/t/globex/"
    assert client.get("/?t=initech").status_code == 200  # not a member: stays on the list
    home = client.get("/t/acme/").content.decode()
    assert 'value="globex"' in home and 'value="acme" selected' in home


def test_navigation_follows_the_role(tenant, members, client_for):
    admin_page = client_for(members[Role.ADMIN]).get("/t/acme/").content.decode()
    viewer_page = client_for(members[Role.VIEWER]).get("/t/acme/").content.decode()
    for link in ('href="/t/acme/members/"', 'href="/t/acme/api-keys/"', 'href="/t/acme/audit/"'):
        assert link in admin_page
        assert link not in viewer_page


def test_home_shows_real_figures(tenant, members, client_for):
    services.api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="k", scopes=["runs"])
    resp = client_for(members[Role.VIEWER]).get("/t/acme/")
    panels = {p["label"]: p for p in resp.context["panels"]}
    assert panels["Members"]["value"] == 5
    assert panels["Active API keys"]["value"] == 1
    assert panels["Tier caps"]["value"] == f"${tenant.tier.tenant_month_cost_cap:,.2f}/mo"
    assert panels["Changes, 7 days"]["value"] == 1
    assert resp.context["recent"] == []  # the audit trail is for admins
    admin_resp = client_for(members[Role.ADMIN]).get("/t/acme/")
    assert [e.action for e in admin_resp.context["recent"]] == ["apikey.create"]
