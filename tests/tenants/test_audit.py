"""The audit log: every change to members, roles and keys writes one row the tenant admin can read."""

from __future__ import annotations

import pytest

from tenants.models import AuditEvent, Membership, Role
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db


def _changes(tenant, members):  # type: ignore[no-untyped-def]
    viewer = Membership.objects.get(tenant=tenant, user=members[Role.VIEWER])
    finance = Membership.objects.get(tenant=tenant, user=members[Role.FINANCE])
    key, _ = api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="pre", scopes=["runs"])
    AuditEvent.objects.all().delete()
    return [
        ("invitation.create", "/t/acme/members/", {"email": "newcomer@example.test", "role": Role.VIEWER}),
        ("member.role", f"/t/acme/members/{viewer.pk}/role/", {"role": Role.OPERATOR}),
        ("member.remove", f"/t/acme/members/{finance.pk}/remove/", {}),
        ("apikey.create", "/t/acme/api-keys/", {"name": "k", "scopes": ["runs"], "acts_as_role": Role.VIEWER}),
        ("apikey.revoke", f"/t/acme/api-keys/{key.pk}/revoke/", {}),
    ]


def test_every_change_writes_exactly_one_audit_row(tenant, members, client_for):
    client = client_for(members[Role.ADMIN])
    for action, url, body in _changes(tenant, members):
        before = AuditEvent.objects.count()
        resp = client.post(url, body)
        assert resp.status_code in (200, 302), (action, resp.status_code)
        rows = AuditEvent.objects.order_by("-id")[: AuditEvent.objects.count() - before]
        assert [r.action for r in rows] == [action]
        assert rows[0].tenant == tenant and rows[0].actor == members[Role.ADMIN]


def test_the_admin_reads_the_audit_log(tenant, members, client_for):
    client = client_for(members[Role.ADMIN])
    for _, url, body in _changes(tenant, members):
        client.post(url, body)
    resp = client.get("/t/acme/audit/")
    assert resp.status_code == 200
    body = resp.content.decode()
    for action in ("invitation.create", "member.role", "member.remove", "apikey.create", "apikey.revoke"):
        assert action in body
    assert [e.action for e in resp.context["page"]][0] == "apikey.revoke"  # newest first


def test_the_audit_log_filters_by_action(tenant, members, client_for):
    client = client_for(members[Role.ADMIN])
    for _, url, body in _changes(tenant, members):
        client.post(url, body)
    page = client.get("/t/acme/audit/?action=member.").context["page"]
    assert {e.action for e in page} == {"member.role", "member.remove"}
    assert len(client.get("/t/acme/audit/?action=apikey.revoke").context["page"].items) == 1


def test_the_audit_log_shows_only_this_tenant(tenant, other_tenant, members, outsider, client_for):
    api_key_create(tenant=other_tenant, actor=outsider, name="globex-only-key", scopes=["runs"])
    body = client_for(members[Role.ADMIN]).get("/t/acme/audit/").content.decode()
    assert "globex-only-key" not in body and "Nothing recorded" in body


@pytest.mark.parametrize("page", ["abc", "0", "-1", "99999", "9" * 5000, "1.5"])
def test_bad_page_numbers_do_not_break_the_log(tenant, members, client_for, page):
    assert client_for(members[Role.ADMIN]).get("/t/acme/audit/", {"page": page}).status_code == 200


def test_non_admins_cannot_read_the_audit_log(tenant, members, client_for):
    for role in (Role.OPERATOR, Role.PROMPT_EDITOR, Role.FINANCE, Role.VIEWER):
        assert client_for(members[role]).get("/t/acme/audit/").status_code == 403


def test_the_audit_log_cannot_be_written(tenant, members, client_for):
    api_key_create(tenant=tenant, actor=members[Role.ADMIN], name="k", scopes=["runs"])
    resp = client_for(members[Role.ADMIN]).post("/t/acme/audit/", {"action": "forged"})
    assert resp.status_code == 403
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["apikey.create"]


def test_change_rows_show_absent_values_as_a_dash_and_dicts_as_words():
    from tenants.selectors import audit_changes

    event = AuditEvent(before={"role": "viewer", "gone": "x"}, after={"role": "operator", "agent_role": None,
                                                                        "allow": {"max_amount": "10"}, "tools": ["a", "b"]})
    rows = {r["field"]: r for r in audit_changes(event)}
    assert rows["role"]["changed"] and (rows["role"]["before"], rows["role"]["after"]) == ("viewer", "operator")
    assert rows["agent_role"]["after"] == "—" and not rows["agent_role"]["removed"]  # created as nothing, not struck out
    assert rows["allow"]["after"] == "max amount: $10.00" and rows["tools"]["after"] == "a, b"
    assert rows["gone"]["removed"] and rows["gone"]["before"] == "x"
