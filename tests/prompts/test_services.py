"""Versions, checks, label moves through the gate, overrides and rollbacks — at the service layer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from agentops.prompts import gate, services
from agentops.prompts.models import LabelMove, PromptPolicy, PromptVersion
from tenants.models import AuditEvent, Role
from tests.prompts.conftest import BASE, new_version


def test_versions_number_sequentially_and_hash_their_content(tenant, members, prompt):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    v2 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system="You are Acme's support agent. Be warm.")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.sha256 != v2.sha256 and len(v1.sha256) == 64
    assert AuditEvent.objects.for_tenant(tenant).filter(action="prompt.version_create").count() == 2


@pytest.mark.parametrize(("changes", "field", "text"), [
    ({"first_message": "Hello {{customer}}"}, "variables", "Undeclared variables: customer"),
    ({"system": "x" * 100_001}, "system", "the limit is 100,000"),
    ({"system": "Be kind.\x00"}, "__all__", "NUL"),
    ({"model": "claude-nonexistent-9"}, "model", "Unknown model"),
    ({"tools": ["issue_refund"]}, "tools", "Not granted to this tenant: issue_refund"),
    ({"tools": ["no_such_tool"]}, "tools", "Unknown tools: no_such_tool"),
    ({"params": {"temperature": 3}}, "params", "temperature"),
    ({"params": {"seed": 1}}, "params", "Unknown parameters: seed"),
])
def test_bad_content_is_refused_with_the_problem_and_nothing_is_saved(tenant, members, prompt, changes, field, text):  # type: ignore[no-untyped-def]
    with pytest.raises(services.VersionInvalid) as exc:
        new_version(tenant, members[Role.PROMPT_EDITOR], prompt, **changes)
    assert text in exc.value.problems[field]
    assert not PromptVersion.objects.for_tenant(tenant).exists()


def test_declared_variables_and_granted_tools_pass_and_unused_ones_warn(tenant, members, prompt, granted):  # type: ignore[no-untyped-def]
    checked = services.version_check(tenant=tenant, data={**BASE, "first_message": "Hi {{ name }}", "variables": ["name", "plan"],
                                                          "tools": [granted]})
    assert checked.problems == {}
    assert "plan" in checked.warnings["variables"]


@pytest.mark.parametrize("name", ["has/slash", "has space", "Upper", "", "x" * 51])
def test_label_names_with_slashes_or_spaces_are_refused(tenant, members, prompt, membership, name):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    with pytest.raises(ValidationError):
        services.label_move(tenant=tenant, actor=members[Role.PROMPT_EDITOR], membership=membership(Role.PROMPT_EDITOR), prompt=prompt,
                            label_name=name, version=v1)
    assert not LabelMove.objects.for_tenant(tenant).exists()


def test_staging_and_custom_labels_move_freely(tenant, members, prompt, membership):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    for label in ("staging", "canary-eu"):
        move = services.label_move(tenant=tenant, actor=members[Role.PROMPT_EDITOR], membership=membership(Role.PROMPT_EDITOR),
                                   prompt=prompt, label_name=label, version=v1)
        assert move.to_version == v1 and not move.override


def test_production_without_eval_results_is_refused(tenant, members, prompt, membership):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    with pytest.raises(services.PromotionBlocked) as exc:
        services.label_move(tenant=tenant, actor=members[Role.PROMPT_EDITOR], membership=membership(Role.PROMPT_EDITOR),
                            prompt=prompt, label_name="production", version=v1)
    assert exc.value.decision.code == "no_eval_results"
    assert "No eval results" in exc.value.decision.message


def _promote(tenant, members, prompt, membership, version, role=Role.PROMPT_EDITOR, **kw):  # type: ignore[no-untyped-def]
    return services.label_move(tenant=tenant, actor=members[role], membership=membership(role), prompt=prompt,
                               label_name="production", version=version, **kw)


def test_the_gate_accepts_a_passing_version_and_refuses_a_regressing_one(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    v2 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system="Be terse.")
    v3 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system="Be chatty.")
    evals.set(v1, "0.90")
    move = _promote(tenant, members, prompt, membership, v1)
    assert move.eval_run_id == evals.by_version[v1.pk].eval_run_id and move.gate["code"] == "ok"
    evals.set(v2, "0.86", failing=("refund-policy",))  # 4 points below: within the 5-point margin
    assert _promote(tenant, members, prompt, membership, v2).to_version == v2
    evals.set(v3, "0.80", failing=("refund-policy", "tone", "greeting"))  # 6 points below v2
    with pytest.raises(services.PromotionBlocked) as exc:
        _promote(tenant, members, prompt, membership, v3)
    assert exc.value.decision.code == "regression"
    assert exc.value.decision.failing_cases == ("refund-policy", "tone", "greeting")
    assert prompt.labels.get(name="production").version == v2


def test_the_margin_is_the_tenants_policy(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    v2 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system="Be terse.")
    evals.set(v1, "0.90")
    _promote(tenant, members, prompt, membership, v1)
    evals.set(v2, "0.80")
    services.policy_save(tenant=tenant, actor=members[Role.ADMIN], gate_margin_points=Decimal("10"))
    assert PromptPolicy.objects.for_tenant(tenant).get().gate_margin_points == 10
    assert _promote(tenant, members, prompt, membership, v2).to_version == v2


def test_a_failing_critical_case_blocks_even_a_high_pass_rate(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    evals.set(v1, "0.99", failing=("no-pii-leak",), critical=("no-pii-leak",))
    with pytest.raises(services.PromotionBlocked) as exc:
        _promote(tenant, members, prompt, membership, v1)
    assert exc.value.decision.code == "critical_failing" and exc.value.decision.failing_critical == ("no-pii-leak",)


def test_an_unfinished_eval_run_does_not_count(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    evals.set(v1, "1", finished=False)
    with pytest.raises(services.PromotionBlocked) as exc:
        _promote(tenant, members, prompt, membership, v1)
    assert exc.value.decision.code == "eval_unfinished"


def test_an_admin_override_needs_a_reason_and_is_recorded(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    evals.set(v1, "0.5", critical=("refund-limit",))
    with pytest.raises(services.PromotionBlocked) as exc:
        _promote(tenant, members, prompt, membership, v1, role=Role.ADMIN, override=True, reason="  ")
    assert exc.value.decision.code == "override_needs_reason"
    move = _promote(tenant, members, prompt, membership, v1, role=Role.ADMIN, override=True, reason="Hotfix for the outage; evals after.")
    assert move.override and move.gate["refused_code"] == "critical_failing"
    audit = AuditEvent.objects.for_tenant(tenant).get(action="prompt.label_override")
    assert audit.after["reason"] == "Hotfix for the outage; evals after." and audit.actor == members[Role.ADMIN]


def test_a_prompt_editor_cannot_override(tenant, members, prompt, membership):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    with pytest.raises(gate.OverrideForbidden):
        _promote(tenant, members, prompt, membership, v1, override=True, reason="I am sure.")
    assert not LabelMove.objects.for_tenant(tenant).exists()


def test_rollback_moves_back_with_a_reason_and_skips_the_gate(tenant, members, prompt, membership, evals):  # type: ignore[no-untyped-def]
    v1 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt)
    v2 = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, system="Be terse.")
    evals.set(v1, "0.90")
    evals.set(v2, "0.95")
    _promote(tenant, members, prompt, membership, v1)
    _promote(tenant, members, prompt, membership, v2)
    label = prompt.labels.get(name="production")
    with pytest.raises(ValidationError):
        services.label_rollback(tenant=tenant, actor=members[Role.PROMPT_EDITOR], label=label, reason="")
    move = services.label_rollback(tenant=tenant, actor=members[Role.PROMPT_EDITOR], label=label, reason="v2 upsets customers")
    assert move.rollback and move.to_version == v1 and move.from_version == v2
    label.refresh_from_db()
    assert label.version == v1


def test_a_version_of_another_tenant_cannot_be_labelled(tenant, other_tenant, members, prompt, membership):  # type: ignore[no-untyped-def]
    other_prompt = services.prompt_create(tenant=other_tenant, actor=None, name="support")
    theirs = services.version_create(tenant=other_tenant, actor=None, prompt=other_prompt, data=BASE)
    with pytest.raises(PromptVersion.DoesNotExist):
        services.label_move(tenant=tenant, actor=members[Role.ADMIN], membership=membership(Role.ADMIN), prompt=prompt,
                            label_name="staging", version=theirs)
