"""Streamed model calls: deltas relayed live, a cut stream redone whole, SSE resume by Last-Event-ID."""

from __future__ import annotations

import json

import pytest

from agentops import redact as redact_module
from agentops.harness import deltas
from agentops.harness.loop import drive_run
from agentops.llm import gateway
from agentops.redact import MASK, redact
from agentops.toolbox.models import Refund
from budgets.models import SpendEntry
from runs.models import Run, RunEvent, RunStatus, ToolCall
from tenants.services import api_key_create
from tests.runtime.conftest import make_run

pytestmark = pytest.mark.django_db

CUT_TEXT = "Your order shipped on Monday and should arrive by Thursday."


def _drive(run: Run) -> str:
    outcome = drive_run(run.pk, worker_id="test-worker")
    run.refresh_from_db()
    return outcome


def _frames(text: str) -> list[tuple[str, str, dict]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if "event" in fields:
            out.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
    return out


def test_text_deltas_are_relayed_as_they_arrive_and_add_up_to_the_persisted_turn(agent):
    run = make_run(agent, "default")
    assert _drive(run) == "succeeded"
    relayed = deltas.read(run.pk, "0")
    kinds = [d["kind"] for _, d in relayed]
    assert kinds[0] == "start" and kinds.count("start") == 1 and "text" in kinds
    turn = run.messages.get(role="assistant")
    assert {d["seq"] for _, d in relayed} == {turn.seq}
    assert "".join(d["text"] for _, d in relayed if d["kind"] == "text") == turn.content[0]["text"]


def test_tool_input_deltas_are_relayed_and_the_tool_runs_from_the_final_message(agent):
    run = make_run(agent, "kb_answer")
    assert _drive(run) == "succeeded"
    relayed = [d for _, d in deltas.read(run.pk, "0")]
    tool_starts = [d for d in relayed if d["kind"] == "tool_use"]
    assert [d["name"] for d in tool_starts] == ["search_knowledge_base"]
    partial = "".join(
        d["partial_json"] for d in relayed if d["kind"] == "tool_input" and d["seq"] == tool_starts[0]["seq"]
    )
    assert json.loads(partial) == {"query": "refund policy"}
    assert run.tool_calls.filter(tool_name="search_knowledge_base").count() == 1


def test_a_stream_cut_mid_way_is_transient_and_the_turn_is_redone_never_half_persisted(agent):
    run = make_run(agent, "stream_cut")
    assert _drive(run) == "rescheduled"
    assert run.status == RunStatus.QUEUED and run.error_type == "stream_interrupted"
    # Nothing of the cut answer was persisted or billed; the reservation was given back.
    assert not run.messages.filter(role="assistant").exists()
    assert not RunEvent.objects.filter(run=run, type="turn").exists()
    assert SpendEntry.objects.filter(run_id=run.pk).count() == 0
    cut = [d for _, d in deltas.read(run.pk, "0")]
    assert cut and cut[-1]["kind"] == "text"  # the subscribers saw the first pieces
    Run.objects.filter(pk=run.pk).update(not_before=None)
    assert _drive(run) == "succeeded"
    turn = run.messages.get(role="assistant")
    assert turn.content[0]["text"].startswith(CUT_TEXT)
    assert SpendEntry.objects.filter(run_id=run.pk).count() == 1
    # The retry opened a new stream for the same turn: subscribers start that turn's text again.
    relayed = [d for _, d in deltas.read(run.pk, "0")]
    starts = [i for i, d in enumerate(relayed) if d["kind"] == "start"]
    assert len(starts) == 2
    assert "".join(d["text"] for d in relayed[starts[1] :] if d["kind"] == "text") == turn.content[0]["text"]


def test_a_max_tokens_stop_inside_a_streamed_tool_call_is_relayed_but_never_executed(agent):
    run = make_run(agent, "max_tokens_tool")
    assert _drive(run) == "succeeded"
    relayed = [d for _, d in deltas.read(run.pk, "0")]
    first = min(d["seq"] for d in relayed)
    partial = "".join(d["partial_json"] for d in relayed if d["kind"] == "tool_input" and d["seq"] == first)
    # Subscribers saw the refund's input as it streamed, cut off where max_tokens stopped it ...
    assert partial.startswith('{"account_id": "ACC-1001"') and not partial.endswith("}")
    assert [d["name"] for d in relayed if d["kind"] == "tool_use"] == ["issue_refund"]
    # ... and it never ran: refused before execution, no refund, the next turn says so.
    call = ToolCall.objects.get(run=run)
    assert call.status == "refused" and call.error_class == "truncated_tool_call"
    assert Refund.objects.filter(run_id=run.pk).count() == 0
    assert run.messages.filter(role="assistant").count() == 2


def test_the_gateway_raises_model_unavailable_for_a_cut_stream(settings):
    settings.ANTHROPIC_API_KEY = ""
    got: list[dict] = []
    call = {
        "model": "claude-sonnet-4-6",
        "fallback_model": None,
        "system": "s",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [],
        "max_tokens": 256,
        "scenario": "stream_cut",
        "conversation_key": "cut-direct",
    }
    with pytest.raises(gateway.ModelUnavailable) as info:
        gateway.create_message(**call, on_delta=got.append)
    assert (
        info.value.error_type == "stream_interrupted"
        and info.value.retry_after_s == gateway.STREAM_CUT_RETRY_AFTER_S
    )
    assert [d["kind"] for d in got][:1] == ["start"] and any(d["kind"] == "text" for d in got)
    # The scenario cuts only the first stream: the same call now completes.
    result = gateway.create_message(**call)
    assert result.message.stop_reason == "end_turn" and result.message.content[0].text.startswith(CUT_TEXT)


def test_sse_sends_text_deltas_and_resumes_by_last_event_id_without_gaps_or_repeats(client, agent):
    key = api_key_create(tenant=agent.tenant, actor=None, name="app", scopes=["runs"])[1]
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="x", status=RunStatus.RUNNING)
    RunEvent.objects.create(tenant=run.tenant, run=run, type="status", data={"status": "running"})
    relay = deltas.DeltaRelay(run.pk, 2)
    relay({"kind": "start", "model": "claude-sonnet-4-6"})
    for piece in ("Hello ", "there, ", "world. "):  # each ends a word: nothing held back
        relay({"kind": "text", "index": 0, "text": piece})
    url = f"/api/v1/runs/{run.pk}/events?follow=0"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def get(**extra: str) -> list[tuple[str, str, dict]]:
        resp = client.get(url, **auth, **extra)
        assert resp.status_code == 200
        return _frames(b"".join(resp.streaming_content).decode())

    frames = get()
    assert [f[1] for f in frames] == [
        "status",
        "stream_start",
        "text_delta",
        "text_delta",
        "text_delta",
        "end",
    ]
    assert "".join(f[2]["text"] for f in frames if f[1] == "text_delta") == "Hello there, world. "
    assert all(f[2]["seq"] == 2 for f in frames if f[1] == "text_delta")
    # Reconnect after the second text delta: exactly the rest, once.
    rest = get(HTTP_LAST_EVENT_ID=frames[3][0])
    assert [(f[1], f[2].get("text")) for f in rest] == [("text_delta", "world. "), ("end", None)]
    # More text arrives, then the turn is persisted: a client resuming from the last delta gets
    # the turn, and no delta of the persisted turn again.
    relay({"kind": "text", "index": 0, "text": "Bye."})
    relay({"kind": "stop", "index": None})
    RunEvent.objects.create(tenant=run.tenant, run=run, type="turn", data={"role": "assistant", "seq": 2})
    after_turn = get(HTTP_LAST_EVENT_ID=frames[4][0])
    assert [f[1] for f in after_turn] == ["turn", "end"]
    # The ids carry both cursors from the first delta on; a bad id is a 400, not a 500.
    assert frames[0][0].isdigit() and ":" in frames[2][0]
    resp = client.get(url, **auth, HTTP_LAST_EVENT_ID="12:abc")
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request"


SECRETS = [
    "jane.canary@example.com",
    "sk-ant-api03-Zx9fQ2LmNp7RtVw4",
    "4242 4242 4242 4242",
    "Bearer eyJhbGciOiJIUzI1NiJ9.payload",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_split_across_two_deltas_never_reaches_the_delta_stream(agent, secret):
    # Every split point of the secret: the relay holds back what could still be one, so no entry
    # in Redis (what every reader sees) holds any part of it, and the text adds up to redact(whole).
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="x", status=RunStatus.RUNNING)
    text = f"Please write to {secret} today, thanks."
    begin = text.index(secret)
    for cut in range(begin, begin + len(secret) + 1):
        relay = deltas.DeltaRelay(run.pk, cut + 1)
        relay({"kind": "start", "model": "claude-sonnet-4-6"})
        relay({"kind": "text", "index": 0, "text": text[:cut]})
        relay({"kind": "text", "index": 0, "text": text[cut:]})
        relay({"kind": "stop", "index": 0})
        pieces = [
            d["text"] for _, d in deltas.read(run.pk, "0") if d["seq"] == cut + 1 and d["kind"] == "text"
        ]
        assert "".join(pieces) == redact(text) and MASK in redact(text), (cut, pieces)
        for piece in pieces:
            assert not any(
                piece.endswith(secret[:k]) or piece.startswith(secret[-k:]) for k in range(3, len(secret))
            )


def test_without_partial_matching_the_text_is_held_until_the_block_ends(monkeypatch):
    # A PII_PATTERNS entry the regex module cannot compile: nothing goes out early, all is redacted.
    monkeypatch.setattr(redact_module, "_partial", lambda: None)
    redactor = redact_module.RollingRedactor()
    assert redactor.feed("Write to jane.canary@exam") == "" and redactor.feed("ple.com today. ") == ""
    assert redactor.flush() == f"Write to {MASK} today. "


def test_tool_input_is_redacted_across_deltas_and_held_back_text_is_flushed_at_the_block_end(agent):
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="x", status=RunStatus.RUNNING)
    relay = deltas.DeltaRelay(run.pk, 1)
    relay({"kind": "text", "index": 0, "text": "Looking it up"})
    # "up" could be the start of an address: held back until the block ends.
    assert [d["text"] for _, d in deltas.read(run.pk, "0")] == ["Looking it "]
    relay({"kind": "stop", "index": 0})
    relay({"kind": "tool_use", "index": 1, "name": "lookup_account"})
    for piece in ('{"email": "jane.can', "ary@exam", 'ple.com"}'):
        relay({"kind": "tool_input", "index": 1, "partial_json": piece})
    relay({"kind": "stop", "index": None})
    got = [d for _, d in deltas.read(run.pk, "0")]
    assert "".join(d["text"] for d in got if d["kind"] == "text") == "Looking it up"
    assert json.loads("".join(d["partial_json"] for d in got if d["kind"] == "tool_input")) == {"email": MASK}
    assert "jane" not in json.dumps(got)


def test_delta_text_is_redacted_on_the_way_out(client, agent):
    key = api_key_create(tenant=agent.tenant, actor=None, name="app", scopes=["runs"])[1]
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="x", status=RunStatus.RUNNING)
    deltas.DeltaRelay(run.pk, 2)({"kind": "text", "index": 0, "text": "mail jane.canary@example.com now"})
    resp = client.get(f"/api/v1/runs/{run.pk}/events?follow=0", HTTP_AUTHORIZATION=f"Bearer {key}")
    body = b"".join(resp.streaming_content).decode()
    assert "text_delta" in body and "jane.canary@example.com" not in body


def test_the_run_page_shows_the_answer_as_it_is_written(client, agent, admin_user):
    run = Run.objects.create(tenant=agent.tenant, agent=agent, input="x", status=RunStatus.RUNNING)
    relay = deltas.DeltaRelay(run.pk, 1)
    relay({"kind": "start", "model": "claude-sonnet-4-6"})
    relay({"kind": "text", "index": 0, "text": "The first half of the attempt that was cut"})
    relay({"kind": "start", "model": "claude-sonnet-4-6"})  # the retry starts the text again
    relay({"kind": "text", "index": 0, "text": "Checking your order "})
    relay({"kind": "text", "index": 0, "text": "for jane.canary@example.com"})
    relay({"kind": "tool_use", "index": 1, "name": "lookup_account"})
    relay({"kind": "tool_input", "index": 1, "partial_json": '{"account_id": "AC'})
    client.force_login(admin_user)
    url = f"/t/{agent.tenant.slug}/runs/{run.pk}/live/"
    body = client.get(url).content.decode()
    assert (
        "Checking your order" in body and "cut" not in body.split('id="streaming-turn"')[1].split("</div>")[0]
    )
    assert "jane.canary@example.com" not in body and "lookup_account" in body and "every 500ms" in body
    # Once the turn is persisted (or the run ends) the preview goes away.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    assert 'id="streaming-turn"' not in client.get(url).content.decode()
