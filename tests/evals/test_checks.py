"""The check engine on observations whose verdicts are known, and the validation of definitions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentops.evals.checks import (
    JudgeError,
    Observation,
    ToolUse,
    check_problems,
    evaluate,
    parse_judge_answer,
)
from agentops.evals.definitions import case_problems, parse_jsonl

TOOLS = ["issue_refund", "lookup_account", "send_email"]


def obs(**kw):  # type: ignore[no-untyped-def]
    base = {"output": "I've refunded $40.00 for TX-5001.", "turns": 3, "cost": Decimal("0.0123"),
            "tool_calls": [ToolUse("lookup_account", {"account_id": "ACC-1001"}),
                           ToolUse("issue_refund", {"transaction_id": "TX-5001", "amount": "40.00"})]}
    base.update(kw)
    return Observation(**base)


def verdicts(checks, o=None, judge=None):  # type: ignore[no-untyped-def]
    assert check_problems(checks, known_tools=TOOLS) == []
    return [(v.type, v.passed) for v in evaluate(checks, o or obs(), judge)]


def test_it_passes_and_fails_output_checks() -> None:
    checks = [{"type": "contains", "value": "REFUNDED"}, {"type": "contains", "value": "REFUNDED", "case_sensitive": True},
              {"type": "not_contains", "value": "sorry"}, {"type": "not_contains", "value": "tx-5001"},
              {"type": "regex", "pattern": r"\$\d+\.\d{2}"}, {"type": "regex", "pattern": "^refund", "flags": "i"}]
    assert verdicts(checks) == [("status", True), ("contains", True), ("contains", False), ("not_contains", True),
                                ("not_contains", False), ("regex", True), ("regex", False)]


def test_it_validates_json_output_against_a_schema() -> None:
    schema = {"type": "object", "properties": {"refund": {"type": "number"}}, "required": ["refund"]}
    check = [{"type": "json_schema", "schema": schema}]
    assert verdicts(check, obs(output='```json\n{"refund": 40}\n```'))[1] == ("json_schema", True)
    assert verdicts(check, obs(output='{"refund": "forty"}'))[1] == ("json_schema", False)
    [_, v] = evaluate(check, obs(output="not json"))
    assert not v.passed and v.reason == "the output is not JSON"


def test_it_checks_tool_calls_with_arguments() -> None:
    checks = [{"type": "tool_called", "tool": "issue_refund", "arguments": {"amount": 40}},
              {"type": "tool_called", "tool": "issue_refund", "arguments": {"amount": "41"}},
              {"type": "tool_called", "tool": "send_email"},
              {"type": "tool_not_called", "tool": "send_email"},
              {"type": "tool_not_called", "tool": "lookup_account"}]
    assert [p for _, p in verdicts(checks)] == [True, True, False, False, True, False]


def test_a_failed_call_does_not_count_when_success_is_required() -> None:
    o = obs(tool_calls=[ToolUse("issue_refund", {"amount": "40.00"}, is_error=True)])
    assert verdicts([{"type": "tool_called", "tool": "issue_refund", "succeeded": True}], o)[1] == ("tool_called", False)
    assert verdicts([{"type": "tool_called", "tool": "issue_refund"}], o)[1] == ("tool_called", True)


def test_it_caps_turns_and_cost_and_reads_the_status() -> None:
    checks = [{"type": "max_turns", "value": 3}, {"type": "max_turns", "value": 2},
              {"type": "max_cost", "value": "0.0123"}, {"type": "max_cost", "value": "0.01"}]
    assert [p for _, p in verdicts(checks)] == [True, True, False, True, False]
    failed = obs(status="failed", outcome="max_iterations")
    [status] = evaluate([], failed)
    assert not status.passed and "max_iterations" in status.reason
    assert [v.passed for v in evaluate([{"type": "status", "value": "failed"}], failed)] == [True]


def test_the_judge_scores_against_the_threshold() -> None:
    check = [{"type": "judge", "rubric": "Is it polite?", "threshold": 0.8}]
    assert verdicts(check, judge=lambda rubric, o, c: (0.9, "polite"))[1] == ("judge", True)
    assert verdicts(check, judge=lambda rubric, o, c: (0.5, "curt"))[1] == ("judge", False)

    def broken(rubric, o, c):  # type: ignore[no-untyped-def]
        raise JudgeError("capped")
    [_, v] = evaluate(check, obs(), broken)
    assert not v.passed and "capped" in v.reason


def test_it_reads_the_judge_answer() -> None:
    assert parse_judge_answer('Sure. {"score": 0.75, "reason": "fine"}') == (0.75, "fine")
    for bad in ["no json", '{"score": 2}', '{"score": "x"}', "{oops}"]:
        with pytest.raises(JudgeError):
            parse_judge_answer(bad)


@pytest.mark.parametrize(("checks", "problem"), [
    ("nope", "must be a list"),
    ([{"type": "smells_good"}], "unknown check type"),
    ([{"type": "contains"}], "missing value"),
    ([{"type": "regex", "pattern": "(unclosed"}], "does not compile"),
    ([{"type": "regex", "pattern": "x", "flags": "q"}], "flags"),
    ([{"type": "tool_called", "tool": "delete_database"}], "unknown tool 'delete_database'"),
    ([{"type": "tool_not_called", "tool": "rm_rf"}], "unknown tool 'rm_rf'"),
    ([{"type": "judge", "rubric": "ok", "threshold": 1.5}], "threshold must be a number from 0 to 1"),
    ([{"type": "judge", "rubric": "ok", "threshold": -0.1}], "threshold"),
    ([{"type": "max_turns", "value": 0}], "integer from 1"),
    ([{"type": "max_cost", "value": "-1"}], "decimal amount"),
    ([{"type": "max_cost", "value": "NaN"}], "decimal amount"),
    ([{"type": "json_schema", "schema": {"type": "nonsense"}}], "not a valid JSON Schema"),
    ([{"type": "contains", "value": "x", "extra": 1}], "unknown field 'extra'"),
])
def test_it_lists_problems_with_bad_checks(checks, problem) -> None:  # type: ignore[no-untyped-def]
    problems = check_problems(checks, known_tools=TOOLS)
    assert problems and problem in " ".join(problems), problems


def test_a_jsonl_import_lists_every_bad_line_and_keeps_nothing_partial() -> None:
    good = '{"name": "a", "input": "hi", "checks": [{"type": "contains", "value": "x"}]}'
    text = "\n".join([good, "{not json", '{"name": "b", "input": "x", "checks": [{"type": "regex", "pattern": "["}]}',
                      '{"name": "c", "input": "x", "fixtures": [{"tool": "nuke", "result": 1}]}', good])
    cases, problems = parse_jsonl(text, known_tools=TOOLS)
    joined = "\n".join(problems)
    assert "line 2: invalid JSON" in joined
    assert "line 3.checks[0] (regex): pattern does not compile" in joined
    assert "line 4.fixtures[0]: unknown tool 'nuke'" in joined
    assert "line 5: the name 'a' is already used on line 1" in joined
    assert len(cases) == 1


def test_a_valid_case_has_no_problems() -> None:
    case = {"name": "refund", "input": "refund TX-5001", "critical": True, "tags": ["billing"],
            "checks": [{"type": "tool_called", "tool": "issue_refund"}],
            "fixtures": [{"tool": "issue_refund", "arguments": {"transaction_id": "TX-5001"}, "result": {"ok": True}}]}
    assert case_problems(case, known_tools=TOOLS) == []
    assert case_problems({**case, "critical": "yes"}, known_tools=TOOLS) == ["case.critical: must be true or false"]
