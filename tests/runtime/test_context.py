"""Context trimming, tool-output truncation and log redaction."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from agentops.harness.context import build_api_messages
from agentops.logs import JsonFormatter, RedactingFilter, bind
from runs.models import Message


def _msg(seq: int, role: str, content: list[dict]) -> Message:
    return Message(seq=seq, role=role, content=content)


def test_context_is_trimmed_in_whole_turn_pairs_with_a_notice(settings):
    settings.CONTEXT_TRIM_TOKENS = 2_000
    big = "x" * 3_000  # ~1,000 tokens by the harness's over-estimate
    log = [_msg(0, "user", [{"type": "text", "text": "the task"}])]
    for i in range(1, 9, 2):
        log.append(_msg(i, "assistant", [{"type": "tool_use", "id": f"t{i}", "name": "search_knowledge_base", "input": {"query": "q"}}]))
        log.append(_msg(i + 1, "user", [{"type": "tool_result", "tool_use_id": f"t{i}", "content": big}]))
    before = copy.deepcopy([(m.seq, m.role, m.content) for m in log])
    api = build_api_messages(log)
    assert api[0]["role"] == "user" and api[0]["content"][0]["text"] == "the task"
    # Three of the four ~1,000-token pairs go (the task plus one pair fits under 2,000), and the notice says so.
    assert api[0]["content"][-1]["text"] == (
        "[AgentOps: 6 earlier messages were omitted to fit the context window; the full log is kept.]"
    )
    assert len(api) == 3 and api[1]["content"][0]["id"] == "t7" and api[2]["content"][0]["tool_use_id"] == "t7"
    # Roles alternate and every tool_use kept still has its tool_result right after it.
    assert [m["role"] for m in api] == ["user", "assistant", "user"] * 1 + ["assistant", "user"] * ((len(api) - 3) // 2)
    for a, u in zip(api[1::2], api[2::2], strict=False):
        assert a["content"][0]["id"] == u["content"][0]["tool_use_id"]
    # The messages it was given (the durable log's rows) are untouched: the notice went into a copy.
    assert [(m.seq, m.role, m.content) for m in log] == before


def test_small_context_is_sent_as_is():
    log = [_msg(0, "user", [{"type": "text", "text": "hi"}])]
    assert build_api_messages(log) == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_long_tool_output_is_truncated_with_a_note():
    from agentops.tools.registry import truncate_output

    out = truncate_output("y" * 50_000, 16_000)
    assert len(out) < 16_200 and "truncated" in out


@pytest.mark.parametrize("secret", ["sk-ant-api03-abcdefghijklmnop", "aok_1a2b3c4d_ZZZZZZZZZZZZZZZZZZZZ", "Bearer abcdefghijkl1234", "jane.doe@example.com"])
def test_logs_are_json_with_context_and_never_carry_secrets(secret):
    record = logging.LogRecord("agentops", logging.INFO, __file__, 1, "calling with %s", (secret,), None)
    token = bind(tenant_id=7, run_id=42)
    try:
        assert RedactingFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        from agentops.logs import log_context

        log_context.reset(token)
    assert secret not in json.dumps(line)
    assert "[REDACTED]" in line["msg"]
    assert line["tenant_id"] == "7" and line["run_id"] == "42"
