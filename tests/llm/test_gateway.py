"""The gateway the harness calls: client selection, fallback, error sorting, routing, the token bound."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from agentops.llm import gateway
from agentops.llm.gateway import (
    ModelRequestError,
    ModelUnavailable,
    create_message,
    get_client,
    input_tokens_bound,
    route_model,
    scripted_mode,
    validate_routing,
)
from tests.llm.helpers import MODEL, TOOLS

USER = [{"role": "user", "content": "I was charged twice for my order."}]


@pytest.fixture(autouse=True)
def scripted(settings: Any) -> Iterator[None]:
    settings.ANTHROPIC_API_KEY = ""
    settings.AGENTOPS_SCENARIO = ""
    settings.ANTHROPIC_MAX_RETRIES = 2
    gateway.reset_clients()
    yield
    gateway.reset_clients()


def call(scenario: str | None, **overrides: Any) -> gateway.GatewayResult:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "fallback_model": None,
        "system": "You are a support agent.",
        "messages": USER,
        "tools": TOOLS,
        "max_tokens": 512,
        "scenario": scenario,
    }
    kwargs.update(overrides)
    return create_message(**kwargs)


def test_scripted_mode_follows_settings(settings: Any) -> None:
    assert scripted_mode()
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-real-looking"
    assert not scripted_mode()
    settings.AGENTOPS_SCENARIO = "default"
    assert scripted_mode()


def test_clients_are_cached_per_mode_and_max_retries(settings: Any) -> None:
    client = get_client()
    assert client is get_client()
    assert client.max_retries == 2
    assert str(client.base_url).startswith("http://scripted.invalid")
    other = get_client(max_retries=0)
    assert other is not client and other.max_retries == 0
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-real-looking"
    real = get_client()
    assert real is not client
    assert str(real.base_url).startswith("https://api.anthropic.com")
    assert real.api_key == "sk-ant-api03-real-looking"


def test_create_message_returns_the_sdk_message() -> None:
    result = call("support_refund")
    assert isinstance(result.message, anthropic.types.Message)
    assert result.model == MODEL and not result.fell_back
    assert result.attempts == 1 and result.latency_ms > 0
    assert result.request_id and result.request_id.startswith("req_")
    assert result.message.content[0].name == "lookup_account"


def test_scenario_falls_back_to_settings_then_default(settings: Any) -> None:
    assert call(None).message.content[0].type == "text"  # "default"
    settings.AGENTOPS_SCENARIO = "kb_answer"
    gateway.reset_clients()
    assert call(None).message.content[-1].name == "search_knowledge_base"


def test_rate_limit_is_absorbed_by_sdk_retries() -> None:
    result = call("rate_limited")
    assert result.message.stop_reason == "end_turn"
    assert result.attempts == 3  # attempts 0 and 1 answered 429


def test_rate_limit_beyond_retries_is_model_unavailable() -> None:
    with pytest.raises(ModelUnavailable) as info:
        call("rate_limited", max_retries=1)
    err = info.value
    assert err.error_type == "rate_limit_error" and err.status == 429
    assert err.retry_after_s == pytest.approx(0.001)  # retry-after-ms wins over retry-after
    assert err.attempts == 2


def test_outage_exhausts_retries_then_the_rescheduled_call_succeeds() -> None:
    with pytest.raises(ModelUnavailable) as info:
        call("outage", conversation_key="run-1")
    err = info.value
    assert err.error_type == "overloaded_error" and err.status == 529
    assert err.retry_after_s == pytest.approx(0.002)
    assert err.attempts == 3
    # A new client (as in another worker process after a restart) sees the shared counter.
    gateway.reset_clients()
    result = call("outage", conversation_key="run-1")
    assert result.message.stop_reason == "end_turn" and result.attempts == 1
    # Another run's conversation has its own outage.
    with pytest.raises(ModelUnavailable):
        call("outage", conversation_key="run-2")


def test_overload_falls_back_once() -> None:
    result = call("overloaded", model="claude-opus-4-5", fallback_model="claude-haiku-4-5")
    assert result.fell_back and result.model == "claude-haiku-4-5"
    assert result.message.model == "claude-haiku-4-5"
    assert result.attempts == 4  # 3 on the primary (SDK retries), 1 on the fallback


def test_overload_without_fallback_is_model_unavailable() -> None:
    with pytest.raises(ModelUnavailable) as info:
        call("overloaded", model="claude-opus-4-5")
    assert info.value.error_type == "overloaded_error" and info.value.attempts == 3


def test_overloaded_fallback_also_failing_is_model_unavailable() -> None:
    with pytest.raises(ModelUnavailable) as info:
        call("overloaded", model="claude-opus-4-5", fallback_model="claude-sonnet-4-6")
    assert info.value.model == "claude-sonnet-4-6" and info.value.attempts == 6


def test_bad_request_is_model_request_error_after_one_attempt() -> None:
    with pytest.raises(ModelRequestError) as info:
        call("bad_request", fallback_model="claude-opus-4-5")
    err = info.value
    assert err.status == 400 and err.error_type == "invalid_request_error"
    assert err.attempts == 1
    assert "prompt is too long" in err.message


def test_unknown_model_is_model_request_error() -> None:
    with pytest.raises(ModelRequestError) as info:
        call("default", model="claude-nonexistent-9")
    assert info.value.status == 404 and info.value.error_type == "not_found_error"
    assert info.value.attempts == 1


def test_unknown_scenario_is_model_request_error() -> None:
    with pytest.raises(ModelRequestError) as info:
        call("no_such_scenario")
    assert info.value.status == 400 and "unknown scenario" in info.value.message


def test_connection_failure_is_model_unavailable(settings: Any) -> None:
    # The real client, pointed at a port where nothing listens: the SDK retries, then gives up.
    settings.ANTHROPIC_API_KEY = "sk-ant-api03-real-looking"
    settings.ANTHROPIC_MAX_RETRIES = 0
    gateway.reset_clients()
    client = get_client()
    gateway._clients[
        (os.getpid(), False, 0, float(settings.ANTHROPIC_TIMEOUT_S), "sk-ant-api03-real-looking")
    ] = client.with_options(base_url="http://127.0.0.1:1")
    with pytest.raises(ModelUnavailable) as info:
        call("default")
    assert info.value.error_type == "connection_error"
    assert info.value.retry_after_s == gateway.DEFAULT_RETRY_AFTER_S


def test_error_messages_are_redacted(tmp_path: Any) -> None:
    import json

    path = tmp_path / "leaky.json"
    path.write_text(
        json.dumps(
            {
                "steps": [
                    {
                        "errors_every_attempt": {
                            "status": 400,
                            "message": "bad key sk-ant-api03-abcdefghijkl for bob@example.com",
                        },
                        "content": [],
                    }
                ]
            }
        )
    )
    with pytest.raises(ModelRequestError) as info:
        call(str(path))
    assert "sk-ant" not in info.value.message and "bob@example.com" not in info.value.message


# --------------------------------------------------------------------------- routing

ROUTING = {
    "simple": "claude-haiku-4-5",
    "complex": "claude-opus-4-5",
    "complex_min_chars": 400,
    "complex_keywords": ["legal", "chargeback"],
}


def test_route_model() -> None:
    assert (
        route_model(model="claude-sonnet-4-6", routing=ROUTING, run_input="Where is my order?")
        == "claude-haiku-4-5"
    )
    assert route_model(model="claude-sonnet-4-6", routing=ROUTING, run_input="x" * 400) == "claude-opus-4-5"
    assert (
        route_model(model="claude-sonnet-4-6", routing=ROUTING, run_input="I will file a Chargeback")
        == "claude-opus-4-5"
    )
    # "legally" is not the word "legal"; between the two lengths the agent's model is used.
    assert (
        route_model(model="claude-sonnet-4-6", routing=ROUTING, run_input="legally " + "y" * 250)
        == "claude-sonnet-4-6"
    )
    assert route_model(model="claude-sonnet-4-6", routing={}, run_input="hi") == "claude-sonnet-4-6"
    assert route_model(model="m", routing={"complex": "big"}, run_input="hi") == "m"  # no simple model given
    assert (
        route_model(model="m", routing={"simple": 5, "complex_min_chars": "x"}, run_input="hi") == "m"
    )  # malformed


def test_validate_routing() -> None:
    assert validate_routing(ROUTING) == []
    assert validate_routing(None) == []
    assert validate_routing([]) == ["routing must be an object"]
    errors = validate_routing(
        {"simple": "", "complex_min_chars": -1, "complex_keywords": "legal", "fast": "x"}
    )
    assert "unknown key: fast" in errors and len(errors) == 4


# --------------------------------------------------------------------------- token bound


def test_input_tokens_bound_covers_the_reported_usage() -> None:
    messages = USER + [
        {"role": "assistant", "content": [{"type": "text", "text": "Let me check. " * 40}]},
        {"role": "user", "content": "Ünïcödé and 日本語のテキスト " * 20},
    ]
    bound = input_tokens_bound(system="You are a support agent.", messages=messages, tools=TOOLS)
    reported = call("default", messages=messages).message.usage.input_tokens
    assert bound >= reported
    # More content never lowers the bound; tools add their overhead.
    assert input_tokens_bound(system="", messages=USER, tools=TOOLS) > input_tokens_bound(
        system="", messages=USER, tools=[]
    )
    assert input_tokens_bound(system="", messages=messages, tools=[]) > input_tokens_bound(
        system="", messages=USER, tools=[]
    )


def test_input_tokens_bound_on_recorded_usage() -> None:
    # Every recorded request/response pair (JSON cassettes in shared/reference): the bound computed
    # from the recorded request is not below the input the real API counted. The structured-output
    # request (output_config) is left out: its schema is sent outside system/messages/tools, which
    # the harness never does and the bound does not cover.
    import json

    from tests.conftest import reference_dir

    folder = reference_dir() / "anthropic_responses" / "raw_cassettes"
    checked = 0
    for path in sorted(folder.glob("*.json")):
        for interaction in json.loads(path.read_text()):
            body = interaction["request"]["body"]
            body = json.loads(body) if isinstance(body, str) else body
            response = interaction["response"].get("body")
            if "output_config" in body or not isinstance(response, dict) or "usage" not in response:
                continue
            usage = response["usage"]
            counted = (
                usage["input_tokens"]
                + usage.get("cache_creation_input_tokens", 0)
                + usage.get("cache_read_input_tokens", 0)
            )
            bound = input_tokens_bound(
                system=body.get("system", ""), messages=body["messages"], tools=body.get("tools", [])
            )
            assert bound >= counted, (path.name, bound, counted)
            checked += 1
    assert checked >= 4
