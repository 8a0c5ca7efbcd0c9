"""The operator console: inbox, detail, htmx decisions, history, roles and tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agentops.escalations.models import Escalation
from runs.models import Run, RunStatus
from tenants.models import Role
from tests.escalations.conftest import gated
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _url(esc: Escalation, what: str = "") -> str:
    return f"/t/{esc.tenant.slug}/escalations/{esc.pk}/{what}"


def test_inbox_lists_pending_by_urgency_then_age_with_sla(agent, members, client_for):
    email = gated(agent, "email_customer")
    refund = gated(agent, "refund_over_limit")  # irreversible → high urgency
    handoff = gated(agent, "handoff")  # the agent said high
    Escalation.objects.filter(pk=email.pk).update(sla_due_at=timezone.now() - timedelta(minutes=3))
    Escalation.objects.filter(pk=handoff.pk).update(requested_at=timezone.now() - timedelta(minutes=2))
    resp = client_for(members[Role.OPERATOR]).get("/t/acme/escalations/")
    assert resp.status_code == 200
    html = resp.content.decode()
    order = [html.index(f'data-escalation="{e.pk}"') for e in (handoff, refund, email)]
    assert order == sorted(order)  # high (older first), then normal
    assert "overdue 3 min" in html and "1 past SLA" in html
    assert "Escalations" in html and 'href="/t/acme/escalations/"' in html  # the nav entry


def test_inbox_pages_by_a_keyset_cursor_across_urgencies(agent, members, client_for, monkeypatch):
    from agentops.escalations import views

    monkeypatch.setattr(views, "INBOX_SHOWN", 1)
    email, refund, other = gated(agent, "email_customer"), gated(agent, "refund_over_limit"), gated(agent, "email_customer")
    client = client_for(members[Role.OPERATOR])
    seen, url = [], "/t/acme/escalations/"
    for _ in range(4):
        html = client.get(url).content.decode()
        seen += [e.pk for e in (email, refund, other) if f'data-escalation="{e.pk}"' in html]
        if "Next 1 →" not in html:
            break
        url = "/t/acme/escalations/" + html[html.index('href="?after=') + 6:].split('"', 1)[0]
    assert seen == [refund.pk, email.pk, other.pk]  # high first, then normal oldest first, one page each
    assert "← Most urgent" in html and "?after=" in client.get("/t/acme/escalations/").content.decode()
    assert client.get("/t/acme/escalations/", {"after": "7:1.1"}).status_code == 400
    assert client.get("/t/acme/escalations/", {"after": "zzz"}).status_code == 400


def test_inbox_table_refreshes_as_a_fragment(agent, members, client_for):
    gated(agent)
    resp = client_for(members[Role.OPERATOR]).get("/t/acme/escalations/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="inbox-table")
    assert resp.status_code == 200 and b"<html" not in resp.content and b"pending-escalations" in resp.content


def test_detail_shows_arguments_reason_grant_turns_and_cost(agent, members, client_for):
    agent.tenant.gate_irreversible_tools = False  # so the threshold is what gates it
    agent.tenant.save()
    esc = gated(agent, "refund_over_limit")
    Run.objects.filter(pk=esc.run_id).update(cost="1234.5")
    html = client_for(members[Role.OPERATOR]).get(_url(esc)).content.decode()
    assert "Amount 900.00 is over the approval threshold 100.00" in html
    assert "<code>900.00</code>" in html and "TX-5002" in html  # the exact arguments
    assert esc.arguments_sha256 in html
    assert "Approval over" in html and "100.00" in html and "refund-desk" in html  # the grant
    assert "{&quot;amount&quot;: &quot;100.00&quot;}" in html and "{'amount'" not in html  # JSON, not a Python repr
    assert "$1,234.50" in html
    assert "lookup_account" in html and "this call" in html  # recent turns
    assert f'name="arguments_sha256" value="{esc.arguments_sha256}"' in html


def test_approve_over_htmx_returns_the_decision_fragment(agent, members, client_for, django_capture_on_commit_callbacks):
    esc = gated(agent)
    client = client_for(members[Role.OPERATOR])
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(_url(esc, "decide/"), {"decision": "approve", "comment": "ok", "arguments_sha256": esc.arguments_sha256}, **HTMX)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert b"<html" not in resp.content and 'id="decision"' in html and "approved" in html and "acme-operator" in html
    assert "every 1s" in html  # polls the run until it settles
    esc.refresh_from_db()
    assert esc.status == "approved"
    progress = client.get(_url(esc, "run/"))
    assert progress.status_code == 200 and b'data-run-status="queued"' in progress.content and b"every 1s" in progress.content


def test_second_operator_sees_already_decided_409(agent, members, client_for, django_capture_on_commit_callbacks):
    esc = gated(agent)
    second_operator = MembershipFactory(tenant=agent.tenant, role=Role.OPERATOR, user=UserFactory(username="acme-operator-2")).user
    form = {"decision": "approve", "comment": "", "arguments_sha256": esc.arguments_sha256}
    with django_capture_on_commit_callbacks(execute=True):
        assert client_for(members[Role.OPERATOR]).post(_url(esc, "decide/"), form, **HTMX).status_code == 200
    resp = client_for(second_operator).post(_url(esc, "decide/"), {**form, "decision": "reject", "comment": "no"}, **HTMX)
    assert resp.status_code == 409
    assert b"already decided: approved by acme-operator" in resp.content
    esc.refresh_from_db()
    assert esc.status == "approved"


def test_forged_form_with_other_arguments_hash_is_refused(agent, members, client_for):
    esc = gated(agent)
    resp = client_for(members[Role.ADMIN]).post(_url(esc, "decide/"), {"decision": "approve", "arguments_sha256": "f" * 64}, **HTMX)
    assert resp.status_code == 409 and b"not the ones this call holds" in resp.content
    # Extra fields cannot smuggle arguments in: only the stored call is ever approved.
    resp = client_for(members[Role.ADMIN]).post(_url(esc, "decide/"), {"decision": "approve", "arguments": '{"to": "x@evil.example"}'}, **HTMX)
    assert resp.status_code == 409
    esc.refresh_from_db()
    assert esc.status == "pending"


def test_reject_without_reason_is_400_and_without_htmx_renders_the_page(agent, members, client_for):
    esc = gated(agent)
    client = client_for(members[Role.OPERATOR])
    resp = client.post(_url(esc, "decide/"), {"decision": "reject", "comment": "", "arguments_sha256": esc.arguments_sha256}, **HTMX)
    assert resp.status_code == 400 and b"Say why you reject it" in resp.content
    resp = client.post(_url(esc, "decide/"), {"decision": "reject", "comment": "", "arguments_sha256": esc.arguments_sha256})
    assert resp.status_code == 400 and b"<html" in resp.content


def test_plain_form_post_redirects_to_the_detail(agent, members, client_for, django_capture_on_commit_callbacks):
    esc = gated(agent)
    with django_capture_on_commit_callbacks(execute=True):
        resp = client_for(members[Role.OPERATOR]).post(_url(esc, "decide/"), {"decision": "reject", "comment": "No.", "arguments_sha256": esc.arguments_sha256})
    assert resp.status_code == 302 and resp["Location"] == _url(esc)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.FINANCE, Role.PROMPT_EDITOR])
def test_other_roles_cannot_read_or_decide(agent, members, client_for, role):
    esc = gated(agent)
    client = client_for(members[role])
    assert client.get(_url(esc)).status_code == 403
    assert client.post(_url(esc, "decide/"), {"decision": "approve", "arguments_sha256": esc.arguments_sha256}).status_code == 403
    esc.refresh_from_db()
    assert esc.status == "pending"


def test_operator_of_another_tenant_gets_404(agent, other_tenant, client_for):
    esc = gated(agent)
    globex_operator = MembershipFactory(tenant=other_tenant, role=Role.OPERATOR, user=UserFactory(username="globex-operator")).user
    client = client_for(globex_operator)
    assert client.get(_url(esc)).status_code == 404
    assert client.post(_url(esc, "decide/"), {"decision": "approve", "arguments_sha256": esc.arguments_sha256}).status_code == 404
    # Their own tenant's URL with acme's id: also 404, the lookup is scoped by the URL's tenant.
    assert client.get(f"/t/globex/escalations/{esc.pk}/").status_code == 404
    assert client.post(f"/t/globex/escalations/{esc.pk}/decide/", {"decision": "approve", "arguments_sha256": esc.arguments_sha256}).status_code == 404
    esc.refresh_from_db()
    assert esc.status == "pending"


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "99999999999999999999", "１"])
def test_bad_ids_are_404(agent, members, client_for, bad):
    assert client_for(members[Role.OPERATOR]).get(f"/t/acme/escalations/{bad}/").status_code == 404


def test_history_filters(agent, members, client_for, django_capture_on_commit_callbacks):
    from agentops.escalations.services import escalation_decide

    a = gated(agent, "email_customer")
    b = gated(agent, "refund_over_limit")
    with django_capture_on_commit_callbacks(execute=True):
        escalation_decide(escalation_id=a.pk, tenant=a.tenant, decision="approve", comment="", actor=members[Role.OPERATOR], arguments_sha256=a.arguments_sha256)
        escalation_decide(escalation_id=b.pk, tenant=b.tenant, decision="reject", comment="Too big", actor=members[Role.ADMIN])
    client = client_for(members[Role.OPERATOR])
    html = client.get("/t/acme/escalations/history/").content.decode()
    assert "send_email" in html and "issue_refund" in html and "Too big" in html
    html = client.get("/t/acme/escalations/history/?status=rejected").content.decode()
    assert "issue_refund" in html and "<code>send_email</code></a>" not in html
    html = client.get("/t/acme/escalations/history/?decided_by=acme-operator&tool=send_email&days=7").content.decode()
    assert "<code>send_email</code></a>" in html and "Too big" not in html
    assert client.get("/t/acme/escalations/history/?status=<script>&days=x&run=1e9").status_code == 200


def test_history_pages_newest_decision_first_by_a_keyset_cursor(agent, members, client_for, monkeypatch):
    from agentops.escalations import views

    monkeypatch.setattr(views, "HISTORY_SHOWN", 1)
    escalations = [gated(agent, "email_customer") for _ in range(3)]
    now = timezone.now()
    for age, esc in zip((5, 1, 3), escalations, strict=True):  # decided 5, 1 and 3 minutes ago
        Escalation.objects.filter(pk=esc.pk).update(status="rejected", decided_at=now - timedelta(minutes=age))
    client = client_for(members[Role.OPERATOR])
    seen, url = [], "/t/acme/escalations/history/?kind=tool_call"
    for _ in range(5):
        html = client.get(url).content.decode()
        seen += [e.pk for e in escalations if f"/escalations/{e.pk}/" in html]
        if 'rel="next"' not in html:
            break
        url = "/t/acme/escalations/history/" + html.split('rel="next" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert "kind=tool_call" in url
    assert seen == [escalations[1].pk, escalations[2].pk, escalations[0].pk] and "← Newest" in html
    assert client.get("/t/acme/escalations/history/", {"after": "x.y"}).status_code == 400


def test_home_shows_the_pending_count(agent, members, client_for):
    esc = gated(agent)
    Escalation.objects.filter(pk=esc.pk).update(sla_due_at=timezone.now() - timedelta(minutes=1))
    html = client_for(members[Role.OPERATOR]).get("/t/acme/").content.decode()
    assert "Pending escalations" in html and "1 past SLA" in html and 'href="/t/acme/escalations/"' in html
    html = client_for(members[Role.VIEWER]).get("/t/acme/").content.decode()
    assert "Pending escalations" in html


def test_run_moves_on_shows_in_progress_fragment(agent, members, client_for):
    esc = gated(agent)
    Escalation.objects.filter(pk=esc.pk).update(status="approved")
    Run.objects.filter(pk=esc.run_id).update(status=RunStatus.SUCCEEDED, result="All done.")
    resp = client_for(members[Role.OPERATOR]).get(_url(esc, "run/"))
    assert b'data-run-status="succeeded"' in resp.content and b"every 1s" not in resp.content and b"All done." in resp.content
