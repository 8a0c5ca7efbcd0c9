"""The registry's contract: validation, allow-lists, thresholds, retries and structured errors."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from agentops.tools import registry
from agentops.tools.registry import (
    ToolContext,
    ToolNotFoundError,
    ToolPermissionError,
    ToolSpec,
    ToolValidationError,
    TransientToolError,
    arguments_sha256,
    canonical_arguments,
    error_outcome,
    execute,
    get_tool,
    require_tool,
    threshold_reason,
    to_anthropic,
    truncate_output,
    validate_arguments,
)

BUILTINS = {
    "search_knowledge_base",
    "lookup_account",
    "search_transactions",
    "check_policy",
    "issue_refund",
    "send_email",
    "fetch_url",
    "escalate_to_human",
}

CTX = ToolContext(tenant_id=1, run_id=7, agent_id=1, tool_use_id="toolu_01", allow={})


def make_spec(func: Any, **overrides: Any) -> ToolSpec:
    fields: dict[str, Any] = {
        "name": "probe",
        "description": "A probe tool for tests. It returns what it is given.",
        "input_schema": {
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0}},
            "required": ["n"],
            "additionalProperties": False,
        },
        "side_effect": "read",
        "idempotent": True,
        "func": func,
    }
    fields.update(overrides)
    return ToolSpec(**fields)


def error_of(content: str) -> dict[str, str]:
    return json.loads(content)["error"]


# --- registry and specs ------------------------------------------------------------------------


def test_every_builtin_is_registered_with_a_strict_schema_and_a_real_description() -> None:
    tools = registry.all_tools()
    assert BUILTINS <= set(tools)
    for name in BUILTINS:
        spec = tools[name]
        assert spec.input_schema["additionalProperties"] is False
        assert spec.description.count(". ") >= 2, f"{name}: description should be 3-4 sentences"
        assert to_anthropic(spec) == {
            "name": name,
            "description": spec.description,
            "input_schema": spec.input_schema,
        }


def test_builtin_side_effect_classes() -> None:
    assert get_tool("issue_refund").side_effect == "irreversible"
    assert get_tool("issue_refund").idempotent is False
    assert get_tool("issue_refund").threshold_args == ("amount",)
    assert get_tool("issue_refund").allow_keys == ("max_amount",)
    assert get_tool("send_email").side_effect == "write"
    assert get_tool("fetch_url").allow_keys == ("domains",)
    assert get_tool("escalate_to_human").handoff is True
    assert get_tool("search_knowledge_base").side_effect == "read"


def test_a_hallucinated_tool_name_is_a_structured_not_found() -> None:
    assert get_tool("drop_all_tables") is None
    assert get_tool(None) is None
    assert get_tool(["issue_refund"]) is None
    with pytest.raises(ToolNotFoundError) as info:
        require_tool("x" * 10_000)
    outcome = error_outcome(info.value)
    assert outcome.is_error and outcome.error_class == "not_found"
    assert error_of(outcome.content)["type"] == "not_found"
    assert len(outcome.content) < 300


def test_a_spec_without_additional_properties_false_is_refused() -> None:
    with pytest.raises(ValueError, match="additionalProperties"):
        make_spec(lambda ctx, n: n, input_schema={"type": "object", "properties": {"n": {"type": "integer"}}})


def test_a_spec_with_an_unknown_allow_key_or_side_effect_is_refused() -> None:
    with pytest.raises(ValueError, match="allow_keys"):
        make_spec(lambda ctx, n: n, allow_keys=("tables_typo",))
    with pytest.raises(ValueError, match="side_effect"):
        make_spec(lambda ctx, n: n, side_effect="destructive")


def test_registering_a_second_tool_under_a_taken_name_fails() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @registry.tool(
            name="issue_refund",
            description="Impostor. It must not replace the real tool. Ever.",
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            side_effect="read",
            idempotent=True,
        )
        def impostor(ctx: ToolContext) -> str:
            return "pwned"

    assert get_tool("issue_refund").func.__name__ == "issue_refund"


# --- schema validation -------------------------------------------------------------------------


def test_schema_errors_name_the_path_and_the_rule() -> None:
    spec = get_tool("issue_refund")
    with pytest.raises(ToolValidationError) as info:
        validate_arguments(spec, {"account_id": "ACC-1001", "amount": 40, "reason": "", "bogus": 1}, {})
    message = info.value.message
    assert "missing required property 'transaction_id'" in message
    assert "$.amount: must be of type string" in message
    assert "$.reason: must be at least 1 characters" in message
    assert "unexpected property 'bogus'" in message
    assert info.value.deterministic is True


def test_a_huge_bad_value_is_not_echoed_back() -> None:
    spec = get_tool("lookup_account")
    huge = "ACC-" + "9" * 100_000
    with pytest.raises(ToolValidationError) as info:
        validate_arguments(spec, {"account_id": huge}, {})
    assert "$.account_id" in info.value.message
    assert "9999999999" not in info.value.message
    assert len(info.value.message) < 300


@pytest.mark.parametrize("arguments", [None, "ACC-1001", ["ACC-1001"], 42, 1.5])
def test_arguments_that_are_not_an_object_are_refused(arguments: object) -> None:
    with pytest.raises(ToolValidationError, match="must be a JSON object"):
        validate_arguments(get_tool("lookup_account"), arguments, {})


def test_email_format_is_checked_without_the_network() -> None:
    spec = get_tool("send_email")
    ok = {"to": "dana.whitfield@example.com", "subject": "Hi", "body": "Hello"}
    assert validate_arguments(spec, ok, {}) == ok
    for bad in [
        "not-an-email",
        "a@b",
        "a@example.com\r\nBcc: victim@example.org",
        "a@@example.com",
        "@example.com",
    ]:
        with pytest.raises(ToolValidationError, match=r"\$\.to: is not a valid email"):
            validate_arguments(spec, {**ok, "to": bad}, {})
    with pytest.raises(ToolValidationError, match=r"\$\.subject: must match the pattern"):
        validate_arguments(spec, {**ok, "subject": "Hi\r\nBcc: victim@example.org"}, {})


def test_invalid_arguments_never_reach_the_function_and_are_not_retried() -> None:
    calls: list[int] = []
    spec = make_spec(lambda ctx, n: calls.append(n))
    outcome = execute(spec, CTX, {"n": "seven"}, backoff_s=0)
    assert outcome.is_error and outcome.error_class == "validation_error"
    assert outcome.attempts == 0
    assert calls == []
    assert error_of(outcome.content) == {
        "type": "validation_error",
        "message": "invalid arguments for probe: $.n: must be of type integer",
    }


def test_a_deterministic_error_from_the_tool_is_returned_at_once() -> None:
    calls: list[int] = []

    def refuse(ctx: ToolContext, n: int) -> None:
        calls.append(n)
        raise ToolValidationError("n is not a prime")

    outcome = execute(make_spec(refuse), CTX, {"n": 4}, max_attempts=5, backoff_s=0)
    assert outcome.is_error and outcome.error_class == "validation_error" and outcome.attempts == 1
    assert calls == [4]
    assert error_of(outcome.content)["message"] == "n is not a prime"


# --- allow-lists -------------------------------------------------------------------------------

REFUND = {
    "account_id": "ACC-1002",
    "transaction_id": "TX-5002",
    "amount": "900.00",
    "reason": "annual plan cancelled",
}


def test_max_amount_refuses_above_the_limit_and_accepts_at_it() -> None:
    spec = get_tool("issue_refund")
    with pytest.raises(ToolPermissionError, match="amount 900.00 is above the grant's limit of 500.00"):
        validate_arguments(spec, REFUND, {"max_amount": "500.00"})
    assert validate_arguments(spec, {**REFUND, "amount": "500"}, {"max_amount": "500.00"})["amount"] == "500"
    assert validate_arguments(spec, REFUND, {})["amount"] == "900.00"


def test_a_broken_max_amount_fails_closed() -> None:
    with pytest.raises(ToolPermissionError, match="not a decimal"):
        validate_arguments(get_tool("issue_refund"), {**REFUND, "amount": "1"}, {"max_amount": "lots"})


def test_recipient_domains_allow_exact_and_subdomains_only() -> None:
    spec = get_tool("send_email")
    allow = {"recipient_domains": ["example.com"]}
    base = {"subject": "Refund", "body": "Done."}
    validate_arguments(spec, {**base, "to": "dana@example.com"}, allow)
    validate_arguments(spec, {**base, "to": "dana@mail.EXAMPLE.com"}, allow)
    for to in ["dana@evil-example.com", "dana@example.com.evil.net", "dana@example.org"]:
        with pytest.raises(ToolPermissionError, match="not in the grant's allowed recipient domains"):
            validate_arguments(spec, {**base, "to": to}, allow)
    with pytest.raises(ToolPermissionError):
        validate_arguments(spec, {**base, "to": "dana@example.com"}, {"recipient_domains": []})


def test_an_allow_list_refusal_is_a_structured_error_without_execution() -> None:
    calls: list[str] = []
    spec = make_spec(
        lambda ctx, **kw: calls.append("ran"),
        name="probe_refund",
        input_schema={
            "type": "object",
            "properties": {"amount": {"type": "string"}},
            "additionalProperties": False,
        },
        allow_keys=("max_amount",),
    )
    ctx = ToolContext(tenant_id=1, run_id=1, agent_id=1, tool_use_id="t", allow={"max_amount": "10"})
    outcome = execute(spec, ctx, {"amount": "10.01"})
    assert outcome.is_error and outcome.error_class == "permission_denied" and calls == []


def test_allow_problems_reports_misconfigured_grants() -> None:
    assert registry.allow_problems(get_tool("fetch_url"), {"domains": ["docs.example.com"]}) == []
    problems = registry.allow_problems(
        get_tool("fetch_url"), {"domain": ["x"], "domains": "docs.example.com"}
    )
    assert any("'domain'" in p for p in problems) and any("list of domain names" in p for p in problems)
    assert registry.allow_problems(get_tool("issue_refund"), {"max_amount": "ten"})


# --- thresholds --------------------------------------------------------------------------------


def test_threshold_reason_says_which_argument_crossed_which_threshold() -> None:
    spec = get_tool("issue_refund")
    assert (
        threshold_reason(spec, REFUND, {"amount": "100.00"})
        == "amount 900.00 is over the approval threshold 100.00"
    )
    assert threshold_reason(spec, {**REFUND, "amount": "40.00"}, {"amount": "100.00"}) is None
    assert threshold_reason(spec, {**REFUND, "amount": "100.00"}, {"amount": "100.00"}) is None
    assert threshold_reason(spec, {**REFUND, "amount": "100.01"}, {"amount": "100"}) is not None
    assert threshold_reason(spec, REFUND, {}) is None
    assert threshold_reason(spec, REFUND, None) is None


def test_a_broken_threshold_gates_instead_of_approving() -> None:
    spec = get_tool("issue_refund")
    assert "gating to be safe" in threshold_reason(spec, REFUND, {"amount": "a lot"})
    assert "gating to be safe" in threshold_reason(spec, REFUND, {"amout": "100.00"})


# --- execution: retries, internal errors, truncation ----------------------------------------------


def test_transient_errors_are_retried_with_backoff_until_success() -> None:
    attempts: list[float] = []

    def flaky(ctx: ToolContext, n: int) -> dict[str, int]:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise TransientToolError("upstream timed out")
        return {"n": n}

    outcome = execute(make_spec(flaky), CTX, {"n": 3}, max_attempts=3, backoff_s=0.05)
    assert not outcome.is_error
    assert outcome.attempts == 3
    assert json.loads(outcome.content) == {"n": 3}
    # Exponential: 0.05 then 0.10 seconds between attempts.
    assert attempts[1] - attempts[0] >= 0.05
    assert attempts[2] - attempts[1] >= 0.10
    assert outcome.duration_ms >= 150


def test_transient_errors_give_up_after_max_attempts_with_a_structured_error() -> None:
    calls: list[int] = []

    def down(ctx: ToolContext, n: int) -> None:
        calls.append(n)
        raise TransientToolError("upstream unavailable")

    outcome = execute(make_spec(down), CTX, {"n": 1}, max_attempts=3, backoff_s=0.001)
    assert outcome.is_error and outcome.error_class == "transient_error"
    assert outcome.attempts == 3 and len(calls) == 3
    assert "gave up after 3 attempts" in error_of(outcome.content)["message"]


def test_a_transient_error_of_a_tool_not_declared_idempotent_is_never_retried() -> None:
    """Its "transient" failure may have taken effect (a timeout after the write): the model gets
    the error once and decides, the tool is not called again behind its back."""
    calls: list[int] = []

    def post(ctx: ToolContext, n: int) -> None:
        calls.append(n)
        raise TransientToolError("gateway timeout")

    spec = make_spec(post, side_effect="write", idempotent=False)
    outcome = execute(spec, CTX, {"n": 1}, max_attempts=3, backoff_s=0.001)
    assert outcome.is_error and outcome.error_class == "transient_error"
    assert outcome.attempts == 1 and calls == [1]


def test_an_unexpected_exception_becomes_an_internal_error_and_is_logged_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(ctx: ToolContext, n: int) -> None:
        raise KeyError("customer dana.whitfield@example.com with key sk-ant-api03-abcdefghijklmnop")

    with caplog.at_level(logging.ERROR, logger="agentops.tools.registry"):
        outcome = execute(make_spec(broken), CTX, {"n": 1})
    assert outcome.is_error and outcome.error_class == "internal_error" and outcome.attempts == 1
    err = error_of(outcome.content)
    assert err["type"] == "internal_error" and "KeyError" in err["message"]
    assert "dana" not in outcome.content and "sk-ant" not in outcome.content
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "probe raised KeyError" in messages
    assert "dana.whitfield@example.com" not in messages and "sk-ant-api03" not in messages


def test_an_unserialisable_result_is_an_internal_error() -> None:
    # Unknown objects fall back to str(); NaN (not JSON) and circular structures do not serialise.
    assert not execute(make_spec(lambda ctx, n: {"obj": object()}), CTX, {"n": 1}).is_error
    outcome = execute(make_spec(lambda ctx, n: {"n": float("nan")}), CTX, {"n": 1})
    assert outcome.is_error and outcome.error_class == "internal_error"
    loop: dict[str, Any] = {}
    loop["self"] = loop
    outcome = execute(make_spec(lambda ctx, n: loop), CTX, {"n": 1})
    assert outcome.is_error and outcome.error_class == "internal_error"


def test_a_handoff_tool_is_never_executed() -> None:
    outcome = execute(
        get_tool("escalate_to_human"),
        CTX,
        {"reason": "unsure", "context_summary": "customer wants a manager", "urgency": "high"},
    )
    assert outcome.is_error and "hand-off" in error_of(outcome.content)["message"]
    with pytest.raises(registry.ToolError):
        get_tool("escalate_to_human").func(CTX, reason="x", context_summary="y", urgency="low")


def test_truncate_output_adds_an_explicit_note() -> None:
    assert truncate_output("short", 10) == "short"
    text = "x" * 50
    cut = truncate_output(text, 20)
    assert cut.startswith("x" * 20)
    assert cut.endswith("[truncated: 20 of 50 characters shown]")


def test_execute_truncates_long_output_and_reports_the_full_size() -> None:
    outcome = execute(make_spec(lambda ctx, n: "y" * n), CTX, {"n": 20_000})
    assert not outcome.is_error and outcome.truncated
    assert outcome.size == 20_000
    assert outcome.content.endswith("[truncated: 16000 of 20000 characters shown]")


def test_canonical_arguments_ignore_key_order() -> None:
    a = {"b": 1, "a": {"y": "é", "x": [1, 2]}}
    b = {"a": {"x": [1, 2], "y": "é"}, "b": 1}
    assert canonical_arguments(a) == canonical_arguments(b) == '{"a":{"x":[1,2],"y":"é"},"b":1}'
    assert arguments_sha256(a) == arguments_sha256(b)
    assert arguments_sha256(a) != arguments_sha256({**a, "b": 2})
    assert len(arguments_sha256(a)) == 64


def test_idempotency_key_combines_run_and_tool_use() -> None:
    assert CTX.idempotency_key == "7:toolu_01"
