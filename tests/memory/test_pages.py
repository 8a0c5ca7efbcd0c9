"""The Memory pages and API: search, inspect, delete, erase a subject — scoped, role-checked, audited."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from agentops.memory import facts
from agentops.memory.models import Fact
from runs.models import Agent
from tenants.models import AuditEvent, Role
from tenants.services import api_key_create
from tests.memory.conftest import note

pytestmark = pytest.mark.django_db

SECRET_TEXT = "Has a standing 20% discount agreed with Bea in finance."


def write(tenant, subject: str, text: str) -> Fact:  # type: ignore[no-untyped-def]
    return note(tenant.pk, subject, text)


def url(tenant, path: str = "") -> str:  # type: ignore[no-untyped-def]
    return f"/t/{tenant.slug}/memory/{path}"


def test_every_role_searches_by_subject_and_text_and_reads_a_fact(tenant, members, other_tenant, client_for):  # type: ignore[no-untyped-def]
    mine = write(tenant, "ACC-1001", SECRET_TEXT)
    write(tenant, "ACC-2002", "Prefers phone calls in the morning.")
    theirs = write(other_tenant, "ACC-1001", "Globex's own note about a refund.")
    client = client_for(members[Role.VIEWER])
    page = client.get(url(tenant)).content.decode()
    assert SECRET_TEXT in page and "phone calls" in page and "Globex" not in page
    assert f'href="/t/{tenant.slug}/memory/journal/"' in page  # the failure journal is one click away
    journal = client.get(url(tenant, "journal/")).content.decode()
    assert f'href="/t/{tenant.slug}/memory/"' in journal  # and back
    by_subject = client.get(url(tenant), {"subject": "ACC-2002"}).content.decode()
    assert "phone calls" in by_subject and SECRET_TEXT not in by_subject
    by_text = client.get(
        url(tenant), {"q": "discount"}
    ).content.decode()  # full-text: "discount" matches "discount"
    assert SECRET_TEXT in by_text and "phone calls" not in by_text
    detail = client.get(url(tenant, f"facts/{mine.pk}/"))
    assert (
        detail.status_code == 200
        and SECRET_TEXT in detail.content.decode()
        and b"Delete this fact" not in detail.content
    )
    assert client.get(url(tenant, f"facts/{theirs.pk}/")).status_code == 404
    assert client.get(url(tenant), {"after": "nope"}).status_code == 400
    assert client.get(url(tenant), {"q": "x" * 501}).status_code == 400
    assert (
        client.post(url(tenant, "erase/"), {"subject": "ACC-1001", "confirm": "ACC-1001"}).status_code == 403
    )
    assert client.post(url(tenant, f"facts/{mine.pk}/delete/"), {"confirm": "delete"}).status_code == 403
    assert Fact.objects.count() == 3


def test_erasing_a_subject_removes_it_from_store_recall_and_pages_and_the_audit_row_stays(
    tenant, members, other_tenant, client_for
):  # type: ignore[no-untyped-def]
    gone = [write(tenant, "ACC-1001", SECRET_TEXT), write(tenant, "ACC-1001", "Asked about refunds twice.")]
    kept = write(tenant, "ACC-2002", "Another customer entirely.")
    elsewhere = write(other_tenant, "ACC-1001", "Globex keeps its own memory.")
    operator = client_for(members[Role.OPERATOR])
    confirm = operator.get(url(tenant, "erase/"), {"subject": "ACC-1001"})
    assert confirm.status_code == 200 and "2 facts about" in confirm.content.decode()
    refused = operator.post(url(tenant, "erase/"), {"subject": "ACC-1001", "confirm": "ACC-100"})
    assert (
        refused.status_code == 400 and Fact.objects.for_tenant(tenant).filter(subject="ACC-1001").count() == 2
    )
    done = operator.post(url(tenant, "erase/"), {"subject": "ACC-1001", "confirm": "ACC-1001"})
    assert done.status_code == 302
    assert not Fact.objects.filter(pk__in=[f.pk for f in gone]).exists()
    assert Fact.objects.filter(pk__in=[kept.pk, elsewhere.pk]).count() == 2
    assert facts.recall(tenant.pk, "ACC-1001", "refunds discount", 500, timezone.now()) == []
    assert SECRET_TEXT not in operator.get(url(tenant)).content.decode()
    assert operator.get(url(tenant, f"facts/{gone[0].pk}/")).status_code == 404
    audit = AuditEvent.objects.get(tenant=tenant, action="memory.subject_erase")
    assert (
        audit.after["facts_erased"] == 2
        and audit.after["runs_scrubbed"] == 0  # no run wrote these (operator notes)
        and "ACC-1001" in audit.target_repr
        and audit.actor == members[Role.OPERATOR]
    )
    assert (
        SECRET_TEXT not in json.dumps([audit.target_repr, audit.before, audit.after])
        and "refunds" not in audit.target_repr
    )


def test_deleting_one_fact_needs_the_button_and_is_audited(tenant, members, client_for):  # type: ignore[no-untyped-def]
    fact = write(tenant, "ACC-1001", SECRET_TEXT)
    admin = client_for(members[Role.ADMIN])
    assert (
        admin.post(url(tenant, f"facts/{fact.pk}/delete/"), {"x": "1"}).status_code == 400
        and Fact.objects.exists()
    )
    assert admin.post(url(tenant, f"facts/{fact.pk}/delete/"), {"confirm": "delete"}).status_code == 302
    assert not Fact.objects.exists()
    audit = AuditEvent.objects.get(tenant=tenant, action="memory.fact_delete")
    assert SECRET_TEXT not in json.dumps([audit.target_repr, audit.before, audit.after])


def test_the_api_lists_by_subject_and_erases_with_the_memory_scope(tenant, other_tenant, client):  # type: ignore[no-untyped-def]
    write(tenant, "ACC-1001", SECRET_TEXT)
    write(tenant, "ACC-2002", "Another customer.")
    write(other_tenant, "ACC-1001", "Globex's note.")
    key = api_key_create(tenant=tenant, actor=None, name="crm", scopes=["memory"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key[1]}"}
    listed = client.get("/api/v1/memory/facts", {"subject": "ACC-1001"}, **auth).json()
    assert [f["text"] for f in listed["data"]] == [SECRET_TEXT] and listed["next_cursor"] is None
    first = client.get("/api/v1/memory/facts", {"limit": "1"}, **auth).json()
    second = client.get("/api/v1/memory/facts", {"limit": "1", "cursor": first["next_cursor"]}, **auth).json()
    assert (
        len(first["data"]) == len(second["data"]) == 1 and first["data"][0]["id"] != second["data"][0]["id"]
    )
    erased = client.post(
        "/api/v1/memory/erase",
        data=json.dumps({"subject": "ACC-1001"}),
        content_type="application/json",
        **auth,
    )
    assert erased.status_code == 200 and erased.json() == {"subject": "ACC-1001", "facts_erased": 1}
    assert client.get("/api/v1/memory/facts", {"subject": "ACC-1001"}, **auth).json()["data"] == []
    assert Fact.objects.for_tenant(other_tenant).count() == 1
    audit = AuditEvent.objects.get(tenant=tenant, action="memory.subject_erase")
    assert audit.actor_key == key[0] and audit.after["facts_erased"] == 1
    runs_key = api_key_create(tenant=tenant, actor=None, name="runs only", scopes=["runs"])[1]
    assert client.get("/api/v1/memory/facts", HTTP_AUTHORIZATION=f"Bearer {runs_key}").status_code == 403


def test_an_admin_sets_the_memory_token_budget_on_the_agent_form(tenant, members, client_for):  # type: ignore[no-untyped-def]
    agent = Agent.objects.create(tenant=tenant, name="support", system_prompt="S", model="claude-sonnet-4-6")
    assert agent.memory_token_budget == 500
    form = {
        "name": "support",
        "system_prompt": "S",
        "model": "claude-sonnet-4-6",
        "max_tokens": "1024",
        "iteration_cap": "25",
        "repetition_threshold": "3",
        "wall_clock_limit_s": "900",
    }
    admin = client_for(members[Role.ADMIN])
    page = admin.get(f"/t/{tenant.slug}/agents/{agent.pk}/")
    assert b'name="memory_token_budget"' in page.content and b'value="500"' in page.content
    assert (
        admin.post(f"/t/{tenant.slug}/agents/{agent.pk}/", {**form, "memory_token_budget": "0"}).status_code
        == 302
    )
    agent.refresh_from_db()
    assert agent.memory_token_budget == 0
    assert (
        admin.post(f"/t/{tenant.slug}/agents/{agent.pk}/", {**form, "memory_token_budget": "-1"}).status_code
        == 400
    )
    assert admin.post(f"/t/{tenant.slug}/agents/{agent.pk}/", form).status_code == 302
    agent.refresh_from_db()
    assert agent.memory_token_budget == 0  # not sent: kept
    assert AuditEvent.objects.filter(
        tenant=tenant, action="agent.update", after__memory_token_budget=0
    ).exists()


def test_a_run_submitted_with_a_bad_subject_is_refused_with_the_reason(tenant, client):  # type: ignore[no-untyped-def]
    Agent.objects.create(tenant=tenant, name="support", system_prompt="S", model="claude-sonnet-4-6")
    key = api_key_create(tenant=tenant, actor=None, name="runs", scopes=["runs"])[1]
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def submit(subject):  # type: ignore[no-untyped-def]
        body = {"agent": "support", "input": "Hello", "metadata": {"subject": subject}}
        return client.post("/api/v1/runs", data=json.dumps(body), content_type="application/json", **auth)

    for bad in ("", " ACC-1 ", "x" * 201, 1001, ["ACC-1"]):
        resp = submit(bad)
        assert resp.status_code == 400 and "metadata.subject" in resp.json()["error"]["message"], bad
    assert submit("ACC-1001").status_code == 201
