from __future__ import annotations

import django_rq

from runs.models import Run, RunStatus
from tenants.models import AuditEvent, Role
from tests.runs_console.factories import AgentFactory, runs_url


def _queued_jobs() -> int:
    return len(django_rq.get_queue("runs").get_job_ids())


def test_it_starts_a_run_and_enqueues_it(agent, admin, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin.post(runs_url("new"), {"agent": agent.pk, "input": "Summarise our refund policy"})
    run = Run.objects.get()
    assert resp.status_code == 302 and resp["Location"] == runs_url("detail", run_id=run.pk)
    assert run.status == RunStatus.QUEUED and run.submitted_by == admin_user and run.submitter_role == Role.ADMIN
    assert run.input == "Summarise our refund policy"
    assert _queued_jobs() == 1


def test_an_operator_may_start_runs_with_a_scenario(agent, members, client_for, settings, django_capture_on_commit_callbacks):
    settings.AGENTOPS_SCENARIO = "default"
    client = client_for(members[Role.OPERATOR])
    page = client.get(runs_url("new"))
    assert 'name="scenario"' in page.content.decode() and "support_refund" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(runs_url("new"), {"agent": agent.pk, "input": "refund", "scenario": "support_refund"})
    run = Run.objects.get()
    assert run.metadata == {"scenario": "support_refund"} and run.submitter_role == Role.OPERATOR


def test_bad_input_rerenders_the_form_with_400(agent, other_tenant, admin):
    foreign = AgentFactory(tenant=other_tenant)
    cases = [
        {"agent": agent.pk, "input": ""},
        {"agent": agent.pk, "input": "   "},
        {"agent": foreign.pk, "input": "hi"},
        {"agent": "nope", "input": "hi"},
        {"agent": agent.pk, "input": "x" * 100_001},
        {"agent": agent.pk, "input": "hi", "scenario": "../../etc/passwd"},
    ]
    for body in cases:
        resp = admin.post(runs_url("new"), body)
        assert resp.status_code == 400, body
        assert b"Start run" in resp.content
    assert not Run.objects.exists()


def test_nul_bytes_and_huge_bodies_never_reach_the_database(agent, admin):
    assert admin.post(runs_url("new"), {"agent": agent.pk, "input": "a\x00b"}).status_code == 400
    assert admin.post(runs_url("new"), {"agent": agent.pk, "input": "x" * (1024 * 1024)}).status_code in (400, 413)
    assert not Run.objects.exists()


def test_the_tenant_kill_switch_refuses_new_runs(tenant, agent, admin):
    admin.post(runs_url("tenant_killswitch"), {"enabled": "1"})
    tenant.refresh_from_db()
    assert tenant.runs_disabled
    resp = admin.post(runs_url("new"), {"agent": agent.pk, "input": "hi"})
    assert resp.status_code == 409 and b"disabled for this tenant" in resp.content
    assert not Run.objects.exists()
    assert AuditEvent.objects.filter(tenant=tenant, action="killswitch.on").exists()
    admin.post(runs_url("tenant_killswitch"), {"enabled": "0"})
    assert admin.post(runs_url("new"), {"agent": agent.pk, "input": "hi"}).status_code == 302


def test_the_agent_kill_switch_refuses_that_agents_runs(tenant, agent, admin):
    other = AgentFactory(tenant=tenant)
    assert admin.post(runs_url("agent_killswitch", agent_id=agent.pk), {"enabled": "1"}).status_code == 302
    assert admin.post(runs_url("new"), {"agent": agent.pk, "input": "hi"}).status_code == 409
    assert admin.post(runs_url("new"), {"agent": other.pk, "input": "hi"}).status_code == 302


def test_the_concurrency_limit_is_a_429(tenant, agent, admin):
    tenant.tier.max_concurrent_runs = 1
    tenant.tier.save()
    assert admin.post(runs_url("new"), {"agent": agent.pk, "input": "one"}).status_code == 302
    resp = admin.post(runs_url("new"), {"agent": agent.pk, "input": "two"})
    assert resp.status_code == 429 and Run.objects.count() == 1


def test_readers_cannot_start_runs(agent, members, client_for):
    for role in (Role.VIEWER, Role.FINANCE, Role.PROMPT_EDITOR):
        client = client_for(members[role])
        assert client.get(runs_url("new")).status_code == 403
        assert client.post(runs_url("new"), {"agent": agent.pk, "input": "hi"}).status_code == 403
    assert not Run.objects.exists()
