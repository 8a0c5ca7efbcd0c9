"""Shared pieces of the model-gateway tests: the fixed tool schemas, a header-recording transport, a
client factory and a conversation driver that answers every tool_use like the harness would."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from agentops.llm.scripted import SCENARIO_HEADER, ScriptedTransport

MODEL = "claude-haiku-4-5"
ACCOUNT = {"type": "string", "pattern": r"^ACC-\d{4,8}$"}
DECIMAL = {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}


def _tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"The {name} tool.",
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


# The tool names and argument schemas fixed by the brief (another helper implements the tools).
TOOLS: list[dict[str, Any]] = [
    _tool("search_knowledge_base", {"query": {"type": "string"}, "limit": {"type": "integer"}}, ["query"]),
    _tool("lookup_account", {"account_id": ACCOUNT}, ["account_id"]),
    _tool(
        "search_transactions",
        {
            "account_id": ACCOUNT,
            "since_days": {"type": "integer", "minimum": 1, "maximum": 365},
            "min_amount": DECIMAL,
        },
        ["account_id"],
    ),
    _tool(
        "check_policy",
        {"policy": {"enum": ["refund", "shipping", "privacy", "grant_eligibility"]}},
        ["policy"],
    ),
    _tool(
        "issue_refund",
        {
            "account_id": ACCOUNT,
            "transaction_id": {"type": "string", "pattern": r"^TX-\d+$"},
            "amount": DECIMAL,
            "reason": {"type": "string"},
        },
        ["account_id", "transaction_id", "amount", "reason"],
    ),
    _tool(
        "send_email",
        {
            "to": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
            "subject": {"type": "string"},
            "body": {"type": "string"},
        },
        ["to", "subject", "body"],
    ),
    _tool("fetch_url", {"url": {"type": "string"}}, ["url"]),
    _tool(
        "escalate_to_human",
        {
            "reason": {"type": "string"},
            "context_summary": {"type": "string"},
            "urgency": {"enum": ["low", "normal", "high"]},
        },
        ["reason", "context_summary", "urgency"],
    ),
]
SCHEMAS = {t["name"]: t["input_schema"] for t in TOOLS}


class RecordingTransport(ScriptedTransport):
    """The scripted transport, remembering what the SDK sent (retry-count header and JSON body)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_counts: list[int] = []
        self.models: list[str] = []
        self.bodies: list[dict[str, Any]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.retry_counts.append(int(request.headers["x-stainless-retry-count"]))
        import json

        self.bodies.append(json.loads(request.content))
        self.models.append(self.bodies[-1].get("model", ""))
        return super().handle_request(request)


def make_client(*, max_retries: int = 2, transport: ScriptedTransport | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test-not-real",
        base_url="http://scripted.invalid",
        max_retries=max_retries,
        http_client=httpx2.Client(transport=transport or ScriptedTransport()),
    )


def block_param(block: Any) -> dict[str, Any]:
    if block.type == "text":
        return {"type": "text", "text": block.text}
    return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}


def converse(
    client: anthropic.Anthropic,
    scenario: str,
    *,
    model: str = MODEL,
    max_steps: int = 6,
    first: str = "I was charged twice.",
) -> tuple[list[anthropic.types.Message], list[dict[str, Any]]]:
    """Drive a scenario like the harness: answer each tool_use with a tool_result until it stops."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
    replies = []
    for _ in range(max_steps):
        reply = client.messages.create(
            model=model,
            max_tokens=1024,
            system="You are a support agent.",
            tools=TOOLS,  # type: ignore[arg-type]
            messages=messages,  # type: ignore[arg-type]
            extra_headers={SCENARIO_HEADER: scenario},
        )
        replies.append(reply)
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            break
        messages.append({"role": "assistant", "content": [block_param(b) for b in reply.content]})
        results = []
        for use in uses:
            if reply.stop_reason == "max_tokens":
                # A truncated tool call is never executed; the API still needs its tool_result.
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": use.id,
                        "content": "not executed: truncated",
                        "is_error": True,
                    }
                )
            else:
                results.append({"type": "tool_result", "tool_use_id": use.id, "content": "ok"})
        messages.append({"role": "user", "content": results})
    return replies, messages
