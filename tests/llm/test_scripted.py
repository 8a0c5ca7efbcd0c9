"""The scripted Messages API, driven through the real ``anthropic`` client (no mocks of the SDK)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import anthropic
import httpx2
import jsonschema
import pytest
import redis
from django.conf import settings

from agentops.llm.gateway import input_tokens_bound
from agentops.llm.scenario import SCENARIO_DIR, load_scenario, scenario_names
from agentops.llm.scripted import SCENARIO_HEADER, ScriptedTransport
from tests.conftest import reference_dir
from tests.llm.helpers import MODEL, SCHEMAS, TOOLS, RecordingTransport, block_param, converse, make_client

TOOL_ID = re.compile(r"^toolu_01[0-9A-Za-z]{22}$")
# Scenarios whose tool calls deliberately break the schemas or the tool list.
BROKEN_ON_PURPOSE = {"unknown_tool", "invalid_args", "max_tokens_tool"}
REQUIRED = {
    "default", "kb_answer", "support_refund", "refund_over_limit", "email_customer", "handoff", "fetch_docs",
    "fetch_ssrf", "loop_forever", "never_ends", "unknown_tool", "invalid_args", "parallel_tools", "injection",
    "rate_limited", "overloaded", "outage", "max_tokens_tool", "cache_usage", "bad_request",
}  # fmt: skip


def reference(name: str) -> Path:
    path = reference_dir() / "anthropic_responses" / name
    assert path.exists(), f"reference fixture missing: {path}"
    return path


def write_scenario(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_all_required_scenarios_are_packaged() -> None:
    assert REQUIRED <= set(scenario_names())


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_scenario_parses_into_sdk_messages(name: str) -> None:
    client = make_client(max_retries=3)  # outage needs 4 attempts to get through in one call
    if name == "bad_request":
        with pytest.raises(anthropic.BadRequestError) as info:
            converse(client, name)
        assert info.value.type == "invalid_request_error"
        return
    replies, messages = converse(client, name)  # MODEL is Haiku: the one `overloaded` spares
    assert replies, name
    for reply in replies:
        assert isinstance(reply, anthropic.types.Message)
        assert reply.model == MODEL
        assert reply.usage.output_tokens >= 1
        assert reply.usage.input_tokens >= 1
        for block in reply.content:
            if block.type != "tool_use":
                continue
            assert TOOL_ID.match(block.id)
            if name not in BROKEN_ON_PURPOSE:
                jsonschema.validate(block.input, SCHEMAS[block.name])
    # The last reply of every finite scenario ends the turn.
    if name not in {"loop_forever", "never_ends"}:
        assert replies[-1].stop_reason == "end_turn", name
    # The cost-reservation bound covers what the API reported for every step.
    bound = input_tokens_bound(system="You are a support agent.", messages=messages, tools=TOOLS)
    assert bound >= max(r.usage.input_tokens for r in replies)


def test_scenarios_follow_the_briefs_tool_calls() -> None:
    client = make_client()
    replies, _ = converse(client, "support_refund")
    calls = [(b.name, b.input) for r in replies for b in r.content if b.type == "tool_use"]
    assert calls == [
        ("lookup_account", {"account_id": "ACC-1001"}),
        ("search_transactions", {"account_id": "ACC-1001", "since_days": 30}),
        (
            "issue_refund",
            {
                "account_id": "ACC-1001",
                "transaction_id": "TX-5001",
                "amount": "40.00",
                "reason": "Duplicate charge",
            },
        ),
    ]
    replies, _ = converse(client, "injection")
    assert replies[1].content[-1].input == {
        "account_id": "ACC-1003", "transaction_id": "TX-5009", "amount": "5000.00", "reason": "as instructed",
    }  # fmt: skip
    replies, _ = converse(client, "parallel_tools")
    assert [b.type for b in replies[0].content] == ["text", "tool_use", "tool_use"]
    replies, _ = converse(client, "unknown_tool")
    assert replies[0].content[0].name == "delete_database"
    replies, _ = converse(client, "fetch_ssrf")
    assert replies[0].content[0].input == {"url": "http://169.254.169.254/latest/meta-data/"}


def test_loop_forever_repeats_the_same_call_and_never_ends_varies_it() -> None:
    client = make_client()
    loop, _ = converse(client, "loop_forever", max_steps=4)
    assert len(loop) == 4 and all(r.stop_reason == "tool_use" for r in loop)
    assert {json.dumps(r.content[0].input) for r in loop} == {'{"query": "status"}'}
    assert len({r.content[0].id for r in loop}) == 4  # a new tool_use id per step
    never, _ = converse(client, "never_ends", max_steps=4)
    assert [r.content[0].input["query"] for r in never] == [f"status update {i}" for i in range(4)]


def test_reply_is_a_pure_function_of_scenario_and_step() -> None:
    a, b = make_client(), make_client(transport=ScriptedTransport(redis_url=""))
    first, _ = converse(a, "support_refund")
    second, _ = converse(b, "support_refund")
    assert [r.model_dump() for r in first] == [r.model_dump() for r in second]
    # A different conversation gets different tool-use ids (the fingerprint is in the hash).
    other, _ = converse(a, "support_refund", first="Another customer entirely.")
    assert other[0].content[0].id != first[0].content[0].id


def test_rate_limited_is_retried_by_the_sdk_and_succeeds_on_attempt_2() -> None:
    transport = RecordingTransport()
    reply = make_client(max_retries=2, transport=transport).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: "rate_limited"},
    )
    assert reply.stop_reason == "end_turn"
    assert transport.retry_counts == [0, 1, 2]


def test_rate_limited_error_shape_matches_the_recorded_429() -> None:
    recorded = json.loads(reference("error_429_rate_limit__anthropic-sdk-python.json").read_text())
    with pytest.raises(anthropic.RateLimitError) as info:
        make_client(max_retries=0).messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "rate_limited"},
        )
    err = info.value
    assert err.status_code == 429 and err.type == "rate_limit_error"
    assert set(err.body) == set(recorded) and set(err.body["error"]) == set(recorded["error"])  # type: ignore[arg-type]
    assert err.request_id and err.request_id == err.body["request_id"]  # type: ignore[index]
    assert err.response.headers["x-should-retry"] == "true"
    assert err.response.headers["retry-after"] == "0"


def test_outage_counter_is_shared_through_redis_by_separate_transports() -> None:
    first = RecordingTransport()
    with pytest.raises(anthropic.OverloadedError):
        make_client(max_retries=2, transport=first).messages.create(
            model=MODEL,
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "outage"},
        )
    assert first.retry_counts == [0, 1, 2]
    keys = redis.Redis.from_url(settings.REDIS_URL).keys("agentops:scripted:*")
    assert len(keys) == 1
    # Another transport instance (another worker process in production) sees the same count.
    second = RecordingTransport()
    reply = make_client(max_retries=2, transport=second).messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: "outage"},
    )
    assert reply.stop_reason == "end_turn" and second.retry_counts == [0]


def test_outage_counter_falls_back_to_process_memory_without_redis() -> None:
    transport = ScriptedTransport(redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    client = make_client(max_retries=0, transport=transport)
    kwargs = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        "extra_headers": {SCENARIO_HEADER: "outage"},
    }
    for _ in range(3):
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(**kwargs)  # type: ignore[arg-type]
    assert client.messages.create(**kwargs).stop_reason == "end_turn"  # type: ignore[arg-type]


def test_errors_can_be_keyed_by_model() -> None:
    transport = RecordingTransport()
    client = make_client(max_retries=2, transport=transport)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(
            model="claude-opus-4-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "overloaded"},
        )
    assert transport.retry_counts == [0, 1, 2]
    ok = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: "overloaded"},
    )
    assert ok.model == "claude-haiku-4-5"


def test_bad_request_is_not_retried() -> None:
    transport = RecordingTransport()
    with pytest.raises(anthropic.BadRequestError) as info:
        make_client(max_retries=2, transport=transport).messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "bad_request"},
        )
    assert transport.retry_counts == [0]
    assert info.value.response.headers["x-should-retry"] == "false"


def test_unknown_scenario_is_a_400_invalid_request() -> None:
    transport = RecordingTransport()
    with pytest.raises(anthropic.BadRequestError) as info:
        make_client(transport=transport).messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "no_such_scenario"},
        )
    assert info.value.type == "invalid_request_error"
    assert "unknown scenario" in (info.value.api_message or "")
    assert transport.retry_counts == [0]
    with pytest.raises(anthropic.BadRequestError):
        make_client().messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "../../etc/passwd"},
        )


def test_unknown_model_is_the_recorded_404() -> None:
    recorded = json.loads(reference("error_404_not_found__otel-contrib.json").read_text())
    with pytest.raises(anthropic.NotFoundError) as info:
        make_client().messages.create(
            model="invalid-model-name", max_tokens=10, messages=[{"role": "user", "content": "Hello"}]
        )
    assert info.value.body["error"] == recorded["error"]  # type: ignore[index]


def test_mismatched_tool_result_is_the_recorded_400() -> None:
    recorded = json.loads(reference("error_400_invalid_request__anthropic-sdk-python.json").read_text())
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01AAAAAAAAAAAAAAAAAAAAAA",
                    "name": "fetch_url",
                    "input": {"url": "x"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "x"},
                {"type": "tool_result", "tool_use_id": "toolu_01GHndag5wQmbzNihYmV2UBj", "content": "x"},
            ],
        },
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        make_client().messages.create(model=MODEL, max_tokens=10, messages=messages)  # type: ignore[arg-type]
    # Same wording as the real API's answer (its messages.0 was our messages.2).
    assert info.value.api_message == recorded["error"]["message"].replace("messages.0.", "messages.2.")


def test_max_tokens_tool_truncates_the_tool_input() -> None:
    reply = make_client().messages.create(
        model=MODEL,
        max_tokens=50,
        messages=[{"role": "user", "content": "refund"}],
        tools=TOOLS,  # type: ignore[arg-type]
        extra_headers={SCENARIO_HEADER: "max_tokens_tool"},
    )
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 50
    use = reply.content[-1]
    assert use.type == "tool_use" and use.name == "issue_refund"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(use.input, SCHEMAS["issue_refund"])


def test_cache_usage_splits_cache_writes_like_the_recorded_fixture() -> None:
    reply = make_client().messages.create(
        model=MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: "cache_usage"},
    )
    usage = reply.usage
    assert usage.cache_read_input_tokens == 1111
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 418
    assert usage.cache_creation.ephemeral_1h_input_tokens == 256
    assert usage.cache_creation_input_tokens == 418 + 256
    assert usage.input_tokens == 3


def test_usage_block_has_the_recorded_fields() -> None:
    recorded = json.loads(reference("end_turn_text__otel-contrib.json").read_text())
    raw = make_client().messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    )
    body = json.loads(raw.http_response.content)
    assert set(body) == set(recorded)
    assert set(body["usage"]) == set(recorded["usage"])
    assert raw.http_response.headers["request-id"].startswith("req_")


def test_delay_ms_is_honoured(tmp_path: Path) -> None:
    import time

    scenario = write_scenario(
        tmp_path, {"steps": [{"delay_ms": 60, "content": [{"type": "text", "text": "slow"}]}]}
    )
    started = time.perf_counter()
    make_client().messages.create(
        model=MODEL,
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: scenario},
    )
    assert time.perf_counter() - started >= 0.06


def test_malformed_scenario_file_is_a_400(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, {"steps": [{"content": [{"type": "image"}]}]})
    with pytest.raises(anthropic.BadRequestError) as info:
        make_client().messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: scenario},
        )
    assert "block type" in (info.value.api_message or "")


def test_count_tokens() -> None:
    count = make_client().messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    assert count.input_tokens >= 1


def test_async_client_works_over_the_same_transport() -> None:
    async def run() -> anthropic.types.Message:
        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-test",
            base_url="http://scripted.invalid",
            http_client=httpx2.AsyncClient(transport=ScriptedTransport()),
        )
        return await client.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={SCENARIO_HEADER: "kb_answer"},
        )

    reply = asyncio.run(run())
    assert reply.content[-1].type == "tool_use"


# --------------------------------------------------------------------------- streaming


def stream_final(
    client: anthropic.Anthropic, scenario: str, messages: list | None = None, **kwargs: object
) -> tuple[list, anthropic.types.Message]:
    with client.messages.stream(
        model=MODEL,
        max_tokens=kwargs.pop("max_tokens", 1024),  # type: ignore[arg-type]
        messages=messages or [{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: scenario},
        **kwargs,  # type: ignore[arg-type]
    ) as stream:
        events = list(stream)
        return events, stream.get_final_message()


@pytest.mark.parametrize("name", ["default", "kb_answer", "parallel_tools", "cache_usage"])
def test_stream_rebuilds_the_same_message_as_non_streaming(name: str) -> None:
    client = make_client()
    plain = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: name},
    )
    events, final = stream_final(client, name)
    assert [block_param(b) for b in final.content] == [block_param(b) for b in plain.content]
    assert final.stop_reason == plain.stop_reason and final.id == plain.id
    assert final.usage.output_tokens == plain.usage.output_tokens
    if any(b.type == "tool_use" for b in plain.content):
        assert any(e.type == "input_json" for e in events)


def test_stream_max_tokens_truncation_matches_the_recorded_shape() -> None:
    events, final = stream_final(make_client(), "max_tokens_tool", max_tokens=64, tools=TOOLS)
    assert final.stop_reason == "max_tokens"
    use = final.content[-1]
    assert use.type == "tool_use"
    assert use.input.get("account_id") == "ACC-1001"
    assert "amount" not in use.input
    # Like the recorded stream: no content_block_stop for the cut-off tool_use block.
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == [0]


def recorded_text(path: Path) -> str:
    text = ""
    for line in path.read_text().splitlines():
        if line.startswith("data: "):
            data = json.loads(line[6:])
            if data.get("type") == "content_block_delta" and data["delta"]["type"] == "text_delta":
                text += data["delta"]["text"]
    return text


def test_recorded_sse_replays_through_the_sdk(tmp_path: Path) -> None:
    recorded = SCENARIO_DIR / "recorded"
    tool_sse = recorded / "stream_tool_use__anthropic-sdk-python.sse"
    cut_sse = recorded / "stream_max_tokens_truncated_tool_use__anthropic-sdk-python.sse"
    # The packaged copies are the reference recordings, byte for byte.
    assert tool_sse.read_bytes() == reference(tool_sse.name).read_bytes()
    scenario = write_scenario(
        tmp_path,
        {
            "steps": [
                {"replay_sse": str(tool_sse), "content": []},
                {"replay_sse": str(cut_sse), "content": []},
            ]
        },
    )

    events, final = stream_final(make_client(), scenario)
    assert (
        final.content[0].text == recorded_text(tool_sse) == "I'll check the current weather in Paris for you."
    )
    assert final.content[1].input == {"location": "Paris"} and final.stop_reason == "tool_use"
    assert any(e.type == "input_json" for e in events)

    follow_up = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "go on"},
    ]
    _, cut = stream_final(make_client(), scenario, messages=follow_up)
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].text == recorded_text(cut_sse)
    assert cut.content[1].name == "make_file" and cut.content[1].input["filename"] == "taxes.txt"


@pytest.mark.parametrize(
    "fixture",
    [
        "end_turn_text__otel-contrib.json",
        "tool_use_only__anthropic-sdk-python.json",
        "tool_loop_final_end_turn__anthropic-sdk-python.json",
        "tool_use_text_plus_tool_use__anthropic-sdk-python.json",
        "tool_use_only__otel-contrib.json",
        "max_tokens__bedrock-recording__arize-openinference.json",
        "cache_read_only__pydantic-ai.json",
        "cache_creation_and_read__pydantic-ai.json",
    ],
)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the recordings use models since deprecated
def test_recorded_bodies_round_trip_through_the_sdk(fixture: str, tmp_path: Path) -> None:
    path = reference(fixture)
    body = json.loads(path.read_text())
    scenario = write_scenario(
        tmp_path, {"models": [body["model"]], "steps": [{"replay_json": str(path), "content": []}]}
    )
    reply = make_client().messages.create(
        model=body["model"],
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={SCENARIO_HEADER: scenario},
    )
    assert reply.id == body["id"] and reply.stop_reason == body["stop_reason"]
    assert reply.model_dump(mode="json", exclude_none=True) == {
        k: v for k, v in body.items() if v is not None
    }


@pytest.mark.parametrize(
    ("fixture", "status", "error_class"),
    [
        ("error_429_rate_limit__anthropic-sdk-python.json", 429, anthropic.RateLimitError),
        ("error_400_invalid_request__anthropic-sdk-python.json", 400, anthropic.BadRequestError),
        ("error_404_not_found__otel-contrib.json", 404, anthropic.NotFoundError),
        ("error_529_overloaded__observed-in-issue.json", 529, anthropic.OverloadedError),
    ],
)
def test_scripted_errors_have_the_recorded_shape(fixture: str, status: int, error_class: type) -> None:
    recorded = json.loads(reference(fixture).read_text())
    scenario_doc = {
        "steps": [{"errors_every_attempt": {"status": status}, "content": [{"type": "text", "text": "x"}]}]
    }
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        scenario = write_scenario(Path(tmp), scenario_doc)
        with pytest.raises(error_class) as info:
            make_client(max_retries=0).messages.create(
                model=MODEL,
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={SCENARIO_HEADER: scenario},
            )
    body = info.value.body
    assert body["type"] == "error" and body["error"]["type"] == recorded["error"]["type"]
    # Current API error bodies carry request_id (the 529 transcription predates it).
    assert set(body) == set(recorded) | {"request_id"}
    assert info.value.response.headers["request-id"] == body["request_id"]


def test_load_scenario_caches_and_validates() -> None:
    assert load_scenario("default") is load_scenario("default")
    assert load_scenario("outage").steps[0].fail_first_requests == 3


def test_unanswered_tool_use_is_a_400() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01AAAAAAAAAAAAAAAAAAAAAA",
                    "name": "fetch_url",
                    "input": {"url": "x"},
                }
            ],
        },
        {"role": "user", "content": "no tool result here"},
    ]
    with pytest.raises(anthropic.BadRequestError) as info:
        make_client().messages.create(model=MODEL, max_tokens=10, messages=messages)  # type: ignore[arg-type]
    assert (info.value.api_message or "").startswith(
        "messages.1: `tool_use` ids were found without `tool_result` blocks"
    )


def test_retired_models_are_404_like_the_real_api(clock) -> None:  # type: ignore[no-untyped-def]
    from agentops.llm.scenario import is_known_model

    # The SDK dates claude-3-sonnet-20240229's end of life July 21st, 2025: served the day before, not on it.
    clock.move_to("2025-07-20T23:59:59+00:00")
    assert is_known_model("claude-3-sonnet-20240229")
    clock.move_to("2025-07-21T00:00:00+00:00")
    assert not is_known_model("claude-3-sonnet-20240229")
    assert is_known_model("claude-haiku-4-5") and is_known_model("claude-opus-4-5-20251101")
    assert not is_known_model("invalid-model-name")


def test_the_pace_setting_spaces_the_sse_events_of_unpaced_steps(settings):
    import time as _time

    from agentops.llm import gateway

    settings.ANTHROPIC_API_KEY = ""
    settings.AGENTOPS_SCRIPTED_PACE_MS = 15
    seen: list[float] = []
    started = _time.perf_counter()
    gateway.create_message(model="claude-sonnet-4-6", fallback_model=None, system="s", messages=[{"role": "user", "content": "hi"}],
                           tools=[], max_tokens=256, scenario="default", on_delta=lambda d: seen.append(_time.perf_counter()))
    # message_start arrives at once; each later event waits 15 ms.
    assert len(seen) >= 3 and seen[-1] - started >= 0.015 * (len(seen) - 1)
