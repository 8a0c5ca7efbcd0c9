from __future__ import annotations

import json

from runs.models import ToolGrant
from tenants.models import AuditEvent, Role
from tests.runs_console.factories import AgentFactory, GrantFactory, runs_url


def _grant(**overrides):  # type: ignore[no-untyped-def]
    data = {"tool_name": "issue_refund", "agent": "", "role": "", "allow": "", "approval_over": ""}
    data.update(overrides)
    return data


def test_admin_grants_a_tool_with_allow_lists_and_thresholds(tenant, agent, admin):
    resp = admin.post(runs_url("grants"), _grant(
        agent=str(agent.pk), role=Role.OPERATOR, requires_approval="on",
        allow=json.dumps({"max_amount": "500.00"}), approval_over=json.dumps({"amount": 100.5}),
    ))
    assert resp.status_code == 302
    grant = ToolGrant.objects.get(tenant=tenant)
    assert grant.agent == agent and grant.role == Role.OPERATOR and grant.requires_approval
    assert grant.allow == {"max_amount": "500.00"} and grant.approval_over == {"amount": "100.5"}
    assert AuditEvent.objects.filter(tenant=tenant, action="grant.create").count() == 1


def test_saving_the_same_tool_agent_and_role_updates_it(tenant, admin):
    admin.post(runs_url("grants"), _grant(tool_name="fetch_url", allow=json.dumps({"domains": ["docs.example.com"]})))
    admin.post(runs_url("grants"), _grant(tool_name="fetch_url", allow=json.dumps({"domains": ["example.org"]})))
    grant = ToolGrant.objects.get(tenant=tenant)
    assert grant.allow == {"domains": ["example.org"]} and grant.agent is None and grant.role == ""
    assert AuditEvent.objects.filter(tenant=tenant, action="grant.update").count() == 1


def test_the_grants_page_lists_grants_and_prefills_an_edit(tenant, agent, admin, admin_user):
    grant = GrantFactory(tenant=tenant, tool_name="send_email", agent=agent, role=Role.ADMIN,
                         allow={"recipient_domains": ["example.com"]}, created_by=admin_user)
    GrantFactory(tenant=tenant, tool_name="search_knowledge_base")
    html = admin.get(runs_url("grants")).content.decode()
    assert "send_email" in html and "all agents" in html and "all roles" in html and "recipient_domains" in html
    edit = admin.get(runs_url("grants"), {"edit": grant.pk})
    assert edit.context["form"].initial["tool_name"] == "send_email"
    assert admin.get(runs_url("grants"), {"edit": "abc"}).status_code == 404


def test_invalid_grants_rerender_with_400(tenant, other_tenant, admin):
    foreign = AgentFactory(tenant=other_tenant)
    bad = [
        _grant(tool_name="rm_rf"),
        _grant(tool_name="escalate_to_human"),  # hand-off needs no grant and is not offered here
        _grant(agent=str(foreign.pk)),
        _grant(agent="abc"),
        _grant(role="superuser"),
        _grant(allow="{broken"),
        _grant(allow="[]"),
        _grant(allow=json.dumps({"domains": ["a.com"]})),  # issue_refund has no domains allow-list
        _grant(allow=json.dumps({"max_amount": "lots"})),
        _grant(allow=json.dumps({"max_amount": "-5"})),
        _grant(tool_name="fetch_url", allow=json.dumps({"domains": "docs.example.com"})),
        _grant(tool_name="fetch_url", allow=json.dumps({"domains": [1, 2]})),
        _grant(approval_over=json.dumps({"account_id": "5"})),  # not a threshold argument
        _grant(approval_over=json.dumps({"amount": "ten"})),
        _grant(approval_over=json.dumps({"amount": "-1"})),
        _grant(approval_over=json.dumps({"amount": True})),
        _grant(approval_over=json.dumps({"amount": "Infinity"})),
        _grant(approval_over=json.dumps({"amount": "1e400"})),
        _grant(allow="[" * 50_000),
    ]
    for body in bad:
        resp = admin.post(runs_url("grants"), body)
        assert resp.status_code == 400, body
        assert b"Grant a tool" in resp.content
    assert admin.post(runs_url("grants"), _grant(allow=json.dumps({"max_amount": "5\u0000"}))).status_code == 400
    assert not ToolGrant.objects.exists()


def test_admin_revokes_a_grant_with_an_audit_row(tenant, admin):
    grant = GrantFactory(tenant=tenant, tool_name="fetch_url")
    assert admin.post(runs_url("grant_revoke", grant_id=grant.pk)).status_code == 302
    assert not ToolGrant.objects.exists()
    assert AuditEvent.objects.filter(tenant=tenant, action="grant.revoke").count() == 1


def test_revoking_another_tenants_grant_is_404(other_tenant, admin):
    foreign = GrantFactory(tenant=other_tenant, tool_name="fetch_url")
    assert admin.post(runs_url("grant_revoke", grant_id=foreign.pk)).status_code == 404
    assert admin.post("/t/acme/grants/abc/revoke/").status_code == 404
    assert admin.get(runs_url("grant_revoke", grant_id=foreign.pk)).status_code == 405  # POST only
    assert ToolGrant.objects.filter(pk=foreign.pk).exists()


def test_only_admins_manage_grants(tenant, members, client_for):
    for role in (Role.OPERATOR, Role.PROMPT_EDITOR, Role.FINANCE, Role.VIEWER):
        client = client_for(members[role])
        assert client.get(runs_url("grants")).status_code == 403
        assert client.post(runs_url("grants"), _grant()).status_code == 403
    assert not ToolGrant.objects.exists()
