"""Invitations: an admin invites an e-mail address; the person accepts through a single-use,
expiring link (an existing user logs in first; a new one sets a password, and the invited
address becomes the username, so a sign-up form cannot be used to probe which usernames exist).

The inviting tenant learns nothing about accounts it does not already have as members: the
answer to an invitation is the same for an address that belongs to someone and one that does not.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from tenants import services
from tenants.models import AuditEvent, Invitation, Membership, Role
from tenants.selectors import InvitationInvalid
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP = {"password1": "a-long-new-secret", "password2": "a-long-new-secret"}
LINK = re.compile(r"http://testserver/invite/([A-Za-z0-9_-]+)/")


def _invite(client, email="new.person@example.test", role=Role.OPERATOR, slug="acme"):  # type: ignore[no-untyped-def]
    return client.post(f"/t/{slug}/members/", {"email": email, "role": role})


def _token_from(message) -> str:  # type: ignore[no-untyped-def]
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1)


def _open(client: Client, token: str):  # type: ignore[no-untyped-def]
    """Follow the e-mailed link the way a browser does: it lands on the token-less accept page."""
    resp = client.get(f"/invite/{token}/")
    assert resp.status_code == 302 and resp["Location"] == "/invite/accept/", resp.status_code
    return client.get("/invite/accept/")


def _pending(tenant, token: str) -> Invitation:  # type: ignore[no-untyped-def]
    return Invitation.objects.for_tenant(tenant).get(token_hash=hashlib.sha256(token.encode()).hexdigest())


# --- Inviting ------------------------------------------------------------------------------

def test_an_admin_invites_an_address_and_the_mail_carries_the_link(tenant, members, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    resp = _invite(admin, "New.Person@Example.test")
    assert resp.status_code == 302 and resp["Location"] == "/t/acme/members/"
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["new.person@example.test"]
    assert "Acme" in message.subject and "operator" in message.body
    token = _token_from(message)
    invitation = _pending(tenant, token)
    assert (invitation.email, invitation.role, invitation.invited_by) == ("new.person@example.test", Role.OPERATOR, members[Role.ADMIN])
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)
    # Only a hash of the token is kept, nowhere the token itself.
    assert token not in str(list(Invitation.objects.values())) + str(list(AuditEvent.objects.values()))
    event = AuditEvent.objects.for_tenant(tenant).get(action="invitation.create")
    assert event.actor == members[Role.ADMIN] and event.after["email"] == "new.person@example.test"
    page = admin.get("/t/acme/members/")
    assert "Invitation sent to new.person@example.test." in page.content.decode()
    assert [i.email for i in page.context["invitations"]] == ["new.person@example.test"]


def test_the_expiry_is_configurable(tenant, members, client_for, mailoutbox, settings):
    settings.INVITATION_MAX_AGE_DAYS = 2
    _invite(client_for(members[Role.ADMIN]))
    invitation = _pending(tenant, _token_from(mailoutbox[0]))
    assert invitation.expires_at - invitation.sent_at == timedelta(days=2)


def test_inviting_the_same_address_again_replaces_the_open_invitation(tenant, members, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin, role=Role.VIEWER)
    _invite(admin, role=Role.FINANCE)
    assert Invitation.objects.for_tenant(tenant).open().count() == 1
    assert _open(Client(), _token_from(mailoutbox[1])).status_code == 200
    assert Client().get(f"/invite/{_token_from(mailoutbox[0])}/").status_code == 404  # the first link is dead
    assert Invitation.objects.for_tenant(tenant).get().role == Role.FINANCE


@pytest.mark.parametrize("email", ["", "not-an-address", "a@b", "x" * 300 + "@example.test"])
def test_a_bad_address_is_refused(tenant, members, client_for, mailoutbox, email):
    assert _invite(client_for(members[Role.ADMIN]), email).status_code == 400
    assert not Invitation.objects.exists() and not mailoutbox


def test_a_mail_that_cannot_be_sent_says_so_and_the_invitation_can_be_resent(tenant, members, client_for, settings):
    # A real SMTP connection to a port nobody listens on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    admin = client_for(members[Role.ADMIN])
    resp = _invite(admin)
    assert resp.status_code == 302
    body = admin.get("/t/acme/members/").content.decode()
    assert "could not be e-mailed" in body and "new.person@example.test" in body
    assert Invitation.objects.for_tenant(tenant).open().count() == 1


# --- What the inviting tenant learns -------------------------------------------------------

def _normalised(body: str, *secrets: str) -> str:
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)
    body = re.sub(r'"X-CSRFToken": "[^"]+"', "", body)
    body = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "TIME", body)
    body = re.sub(r"/invitations/\d+/", "/invitations/ID/", body)
    for secret in secrets:
        body = body.replace(secret, "ADDRESS")
    return body


def test_inviting_answers_the_same_for_an_existing_account_and_an_unknown_address(
    tenant, other_tenant, members, outsider, client_for, mailoutbox
):
    """globex-admin has an account (and a tenant); nobody owns the other address. Acme's admin
    sees the same redirect, message, page and e-mail for both."""
    admin = client_for(members[Role.ADMIN])
    answers = []
    for email in (outsider.email, "nobody-here@example.test"):
        resp = _invite(admin, email, role=Role.VIEWER)
        page = admin.get(resp["Location"])
        answers.append((resp.status_code, resp["Location"], _normalised(page.content.decode(), email)))
        Invitation.objects.all().delete()  # each probe from the same starting point
    assert answers[0] == answers[1]
    assert outsider.username not in answers[0][2]
    bodies = [_normalised(m.body, m.to[0], _token_from(m)) for m in mailoutbox]
    assert bodies[0] == bodies[1] and mailoutbox[0].subject == mailoutbox[1].subject
    # Nobody became a member by being invited.
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()


@pytest.mark.parametrize("body", [
    {"username": "globex-admin", "role": Role.VIEWER},
    {"username": "globex-admin", "role": Role.VIEWER, "email": ""},
])
def test_the_add_by_username_path_is_gone_and_answers_alike(tenant, other_tenant, members, outsider, client_for, body):
    """Today's add-by-username told an existing username (302, member added, e-mail shown) from an
    unknown one (400 "No active user"). Now both get the same 400 and nobody is added."""
    admin = client_for(members[Role.ADMIN])
    existing = admin.post("/t/acme/members/", body)
    unknown = admin.post("/t/acme/members/", {**body, "username": "no-such-user-anywhere"})
    assert existing.status_code == unknown.status_code == 400
    assert _normalised(existing.content.decode()) == _normalised(unknown.content.decode())
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()
    assert outsider.email not in existing.content.decode()


def test_the_members_page_shows_only_members_and_own_invitations(tenant, other_tenant, members, outsider, client_for):
    services.invitation_create(
        tenant=other_tenant, actor_membership=Membership.objects.get(user=outsider), email="globex-secret@example.test", role=Role.VIEWER,
    )
    body = client_for(members[Role.ADMIN]).get("/t/acme/members/").content.decode()
    assert "globex-secret@example.test" not in body and outsider.username not in body and outsider.email not in body
    assert "No open invitations" in body


def test_the_accept_page_does_not_tell_whether_the_address_has_an_account(tenant, members, outsider, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin, outsider.email)
    _invite(admin, "nobody-here@example.test")
    pages = [_normalised(_open(Client(), _token_from(m)).content.decode(), m.to[0]) for m in mailoutbox]
    assert pages[0] == pages[1]
    assert "Create account and join" in pages[0] and "Log in to accept" in pages[0]


# --- Accepting ------------------------------------------------------------------------------

def test_round_trip_for_a_new_user(tenant, members, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]), "new.person@example.test", Role.OPERATOR)
    token = _token_from(mailoutbox[0])
    browser = Client()
    page = _open(browser, token)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Join Acme" in body and "operator" in body
    assert token not in body  # the page (and its Referer) no longer carries the token
    assert not Membership.objects.filter(tenant=tenant, role=Role.OPERATOR).exclude(user=members[Role.OPERATOR]).exists()

    resp = browser.post("/invite/accept/", SIGNUP)
    assert resp.status_code == 302 and resp["Location"] == "/t/acme/"
    user = get_user_model().objects.get(username="new.person@example.test")
    assert user.email == "new.person@example.test" and not user.is_staff
    assert Membership.objects.get(tenant=tenant, user=user).role == Role.OPERATOR
    home = browser.get("/t/acme/")  # signed in by the accept
    assert home.status_code == 200 and "Welcome to Acme" in home.content.decode()
    assert Client().login(username="new.person@example.test", password="a-long-new-secret")
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == user and invitation.accepted_at is not None
    event = AuditEvent.objects.for_tenant(tenant).get(action="invitation.accept")
    assert event.actor == user and event.after == {
        "email": "new.person@example.test", "user": "new.person@example.test", "role": "operator", "already_member": False,
    }


def test_round_trip_for_an_existing_user_who_logs_in_first(tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]), outsider.email, Role.FINANCE)
    browser = Client()
    page = _open(browser, _token_from(mailoutbox[0]))
    login_url = page.context["login_url"]
    assert login_url == "/login/?next=/invite/accept/" and login_url in page.content.decode().replace("&amp;", "&")
    resp = browser.post("/login/?next=/invite/accept/", {"username": outsider.username, "password": PASSWORD, "next": "/invite/accept/"})
    assert resp.status_code == 302 and resp["Location"] == "/invite/accept/"
    page = browser.get("/invite/accept/")
    assert f"Accept as {outsider.username}" in page.content.decode()
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()  # GET accepts nothing

    resp = browser.post("/invite/accept/")
    assert resp.status_code == 302 and resp["Location"] == "/t/acme/"
    assert Membership.objects.get(tenant=tenant, user=outsider).role == Role.FINANCE
    assert Membership.objects.get(tenant__slug="globex", user=outsider).role == Role.ADMIN  # untouched
    assert Invitation.objects.get().accepted_by == outsider


def test_a_signed_in_user_accepts_with_one_click(tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]), outsider.email, Role.VIEWER)
    browser = client_for(outsider)
    _open(browser, _token_from(mailoutbox[0]))
    assert browser.post("/invite/accept/")["Location"] == "/t/acme/"
    assert Membership.objects.filter(tenant=tenant, user=outsider, role=Role.VIEWER).exists()


def test_a_member_who_accepts_keeps_their_role(tenant, members, client_for, mailoutbox):
    viewer = members[Role.VIEWER]
    _invite(client_for(members[Role.ADMIN]), viewer.email, Role.ADMIN)
    browser = client_for(viewer)
    _open(browser, _token_from(mailoutbox[0]))
    resp = browser.post("/invite/accept/", follow=True)
    assert "already a member" in resp.content.decode()
    assert Membership.objects.get(tenant=tenant, user=viewer).role == Role.VIEWER
    assert AuditEvent.objects.get(action="invitation.accept").after["already_member"] is True


def test_a_weak_password_keeps_the_invitation_open(tenant, members, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    browser = Client()
    _open(browser, _token_from(mailoutbox[0]))
    short = browser.post("/invite/accept/", {"password1": "abc", "password2": "abc"})
    assert short.status_code == 400 and "too short" in short.content.decode()
    mismatch = browser.post("/invite/accept/", {"password1": "a-long-new-secret", "password2": "another-long-one"})
    assert mismatch.status_code == 400 and "didn’t match" in mismatch.content.decode()
    assert Invitation.objects.get().is_open() and get_user_model().objects.count() == len(members)
    assert browser.post("/invite/accept/", SIGNUP).status_code == 302


def test_the_new_account_page_has_no_username_to_probe(tenant, members, client_for, mailoutbox):
    """A chosen username would have to be refused when taken, and a tenant admin who invites a
    mailbox of their own could then probe usernames. The address is the username instead; a
    username in the body is ignored."""
    _invite(client_for(members[Role.ADMIN]))
    browser = Client()
    page = _open(browser, _token_from(mailoutbox[0])).content.decode()
    assert 'name="username"' not in page and "log in with the username <strong>new.person@example.test</strong>" in page
    for probe in ("acme-viewer", "no-such-user"):
        assert browser.post("/invite/accept/", {"username": probe, "password1": "abc", "password2": "abc"}).status_code == 400
    browser.post("/invite/accept/", {**SIGNUP, "username": "acme-viewer"})
    assert Membership.objects.get(tenant=tenant, user__username="new.person@example.test").role == Role.OPERATOR


def test_an_address_that_already_names_an_account_is_told_to_log_in(tenant, members, client_for, mailoutbox):
    """Only the reader of that mailbox gets this far, and learns only about their own address."""
    UserFactory(username="new.person@example.test")
    _invite(client_for(members[Role.ADMIN]), "New.Person@example.test")
    browser = Client()
    _open(browser, _token_from(mailoutbox[0]))
    resp = browser.post("/invite/accept/", SIGNUP)
    assert resp.status_code == 400 and "Log in to accept instead" in resp.content.decode()
    assert Invitation.objects.get().is_open()


def test_the_token_reaches_no_log_line(tenant, members, client_for, mailoutbox, caplog):
    caplog.set_level("DEBUG")
    _invite(client_for(members[Role.ADMIN]))
    token = _token_from(mailoutbox[0])
    browser = Client()
    _open(browser, token)
    browser.post("/invite/accept/", SIGNUP)
    assert Membership.objects.filter(user__username="new.person@example.test").exists()
    assert token not in caplog.text


# --- Refused links ---------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["x", "a" * 43, "A" * 20 + "-_" * 10, "ü" * 30, "a" * 5000, "1"])
def test_a_bad_token_gets_a_clear_404_page(tenant, client, token):
    resp = client.get(f"/invite/{token}/")
    assert resp.status_code == 404
    assert "This invitation link is not valid" in resp.content.decode()


def test_the_accept_page_without_a_link_is_a_clear_404(tenant, client, members, client_for):
    for browser in (client, client_for(members[Role.VIEWER])):
        for method in (browser.get, browser.post):
            resp = method("/invite/accept/")
            assert resp.status_code == 404 and "Open the link in your invitation e-mail" in resp.content.decode()


def test_a_used_link_is_refused(tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    token = _token_from(mailoutbox[0])
    first = Client()
    _open(first, token)
    first.post("/invite/accept/", SIGNUP)
    again = Client().get(f"/invite/{token}/")
    assert again.status_code == 410 and "already accepted" in again.content.decode()
    with pytest.raises(InvitationInvalid, match="used"):
        services.invitation_accept(raw_token=token, user=outsider)
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()


def test_a_link_opened_before_it_was_used_elsewhere_cannot_accept_again(tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    token = _token_from(mailoutbox[0])
    first, second = Client(), client_for(outsider)
    _open(first, token)
    _open(second, token)
    first.post("/invite/accept/", SIGNUP)
    resp = second.post("/invite/accept/")
    assert resp.status_code == 410
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()


def test_an_expired_link_is_refused(tenant, members, outsider):
    sent = timezone.now() - timedelta(days=7, seconds=1)
    actor = Membership.objects.get(tenant=tenant, user=members[Role.ADMIN])
    _, token = services.invitation_create(tenant=tenant, actor_membership=actor, email=outsider.email, role=Role.VIEWER, now=sent)
    resp = Client().get(f"/invite/{token}/")
    assert resp.status_code == 410 and "expired" in resp.content.decode()
    # A second before expiry it still works; at expiry it does not (a frozen clock, not a sleep).
    invitation = Invitation.objects.get()
    with pytest.raises(InvitationInvalid, match="expired"):
        services.invitation_accept(raw_token=token, user=outsider, now=invitation.expires_at)
    services.invitation_accept(raw_token=token, user=outsider, now=invitation.expires_at - timedelta(seconds=1))
    assert Membership.objects.filter(tenant=tenant, user=outsider).exists()


def test_a_link_that_expires_while_the_page_is_open_is_refused_on_accept(tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    browser = client_for(outsider)
    _open(browser, _token_from(mailoutbox[0]))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    resp = browser.post("/invite/accept/")
    assert resp.status_code == 410 and "expired" in resp.content.decode()
    assert not Membership.objects.filter(tenant=tenant, user=outsider).exists()


def test_a_link_to_a_deactivated_tenant_is_refused(tenant, members, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    tenant.active = False
    tenant.save()
    assert Client().get(f"/invite/{_token_from(mailoutbox[0])}/").status_code == 404


# --- Listing, revoking, resending ---------------------------------------------------------

def test_revoke_kills_the_link_and_is_audited(tenant, members, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin)
    token = _token_from(mailoutbox[0])
    invitation = _pending(tenant, token)
    resp = admin.post(f"/t/acme/invitations/{invitation.pk}/revoke/")
    assert resp.status_code == 302
    assert Client().get(f"/invite/{token}/").status_code == 410
    assert list(admin.get("/t/acme/members/").context["invitations"]) == []
    event = AuditEvent.objects.for_tenant(tenant).get(action="invitation.revoke")
    assert event.actor == members[Role.ADMIN] and event.after == {"email": "new.person@example.test", "role": "operator", "open": False}
    admin.post(f"/t/acme/invitations/{invitation.pk}/revoke/")  # idempotent: no second row
    assert AuditEvent.objects.filter(action="invitation.revoke").count() == 1


def test_resend_issues_a_new_link_and_the_old_one_stops_working(tenant, members, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin)
    old = _token_from(mailoutbox[0])
    invitation = _pending(tenant, old)
    assert admin.post(f"/t/acme/invitations/{invitation.pk}/resend/").status_code == 302
    assert len(mailoutbox) == 2 and mailoutbox[1].to == ["new.person@example.test"]
    new = _token_from(mailoutbox[1])
    assert new != old
    assert Client().get(f"/invite/{old}/").status_code == 404
    assert _open(Client(), new).status_code == 200
    assert AuditEvent.objects.for_tenant(tenant).filter(action="invitation.resend").count() == 1


def test_an_expired_invitation_is_listed_as_expired_and_can_be_resent(tenant, members, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert 'class="badge expired"' in admin.get("/t/acme/members/").content.decode()
    invitation = Invitation.objects.get()
    admin.post(f"/t/acme/invitations/{invitation.pk}/resend/")
    invitation.refresh_from_db()
    assert invitation.expires_at > timezone.now() + timedelta(days=6)
    assert _open(Client(), _token_from(mailoutbox[1])).status_code == 200


def test_an_accepted_invitation_cannot_be_revoked_or_resent(tenant, members, outsider, client_for, mailoutbox):
    admin = client_for(members[Role.ADMIN])
    _invite(admin, outsider.email)
    token = _token_from(mailoutbox[0])
    services.invitation_accept(raw_token=token, user=outsider)
    invitation = Invitation.objects.get()
    assert "already accepted" in admin.post(f"/t/acme/invitations/{invitation.pk}/revoke/", follow=True).content.decode()
    admin.post(f"/t/acme/invitations/{invitation.pk}/resend/")
    invitation.refresh_from_db()
    assert invitation.revoked_at is None and len(mailoutbox) == 1


def test_a_wrong_tenant_admin_cannot_revoke_or_resend(tenant, other_tenant, members, outsider, client_for, mailoutbox):
    _invite(client_for(members[Role.ADMIN]))
    token = _token_from(mailoutbox[0])
    invitation = _pending(tenant, token)
    theirs = client_for(outsider)  # admin of globex
    for action in ("revoke", "resend"):
        assert theirs.post(f"/t/globex/invitations/{invitation.pk}/{action}/").status_code == 404
        assert theirs.post(f"/t/acme/invitations/{invitation.pk}/{action}/").status_code == 404
    invitation.refresh_from_db()
    assert invitation.is_open() and invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert len(mailoutbox) == 1 and not AuditEvent.objects.filter(action__in=["invitation.revoke", "invitation.resend"]).exists()


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.PROMPT_EDITOR, Role.FINANCE, Role.VIEWER])
def test_only_admins_invite(tenant, members, client_for, mailoutbox, role):
    assert _invite(client_for(members[role]), role=Role.ADMIN).status_code == 403
    assert not Invitation.objects.exists() and not mailoutbox


@pytest.mark.django_db(transaction=True)
def test_two_people_accepting_one_link_at_once_make_one_member(tenant):
    admin = MembershipFactory(tenant=tenant, role=Role.ADMIN, user=UserFactory(username="race-admin"))
    _, token = services.invitation_create(tenant=tenant, actor_membership=admin, email="race@example.test", role=Role.VIEWER)
    users = [UserFactory(username="race-a"), UserFactory(username="race-b")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def accept(user) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            services.invitation_accept(raw_token=token, user=user)
            outcomes.append("ok")
        except InvitationInvalid as exc:
            outcomes.append(exc.reason)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "used"]
    assert Membership.objects.filter(tenant=tenant, user__in=users).count() == 1
