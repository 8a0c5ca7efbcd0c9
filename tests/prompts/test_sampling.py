"""A version's sampling parameters reach the model: the scripted API receives them in the request body."""

from __future__ import annotations

import anthropic
import pytest

from agentops.harness.loop import drive_run
from agentops.llm import gateway
from agentops.prompts import services
from runs.models import Run, RunStatus, Span
from tenants.models import Role
from tests.llm.helpers import RecordingTransport, make_client
from tests.prompts.conftest import new_version
from tests.runtime.conftest import _scripted, agent, demo_data, make_run, tier_generous  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(monkeypatch):  # type: ignore[no-untyped-def]
    transport = RecordingTransport(redis_url="")
    monkeypatch.setattr(gateway, "ScriptedTransport", lambda: transport)
    gateway.reset_clients()
    yield transport
    gateway.reset_clients()


def test_a_versions_parameters_are_sent_with_each_model_call(tenant, members, prompt, agent, recording):  # type: ignore[no-untyped-def]  # noqa: F811
    params = {"max_tokens": 300, "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop_sequences": ["\n\nHuman:"]}
    version = new_version(tenant, members[Role.PROMPT_EDITOR], prompt, params=params, model="claude-sonnet-4-6")
    services.label_move(tenant=tenant, actor=members[Role.PROMPT_EDITOR], prompt=prompt, label_name="staging", version=version)
    agent.prompt, agent.prompt_label = prompt, "staging"
    agent.save()
    run = make_run(agent, "default")
    drive_run(run.pk, worker_id="test-worker")
    run = Run.objects.get(pk=run.pk)
    assert run.status == RunStatus.SUCCEEDED and run.prompt_version_id == version.pk
    (body,) = recording.bodies
    assert {k: body[k] for k in params} == params
    chat = Span.objects.get(run=run, name__startswith="chat")
    assert chat.attributes["gen_ai.request.temperature"] == 0.3 and chat.attributes["gen_ai.request.stop_sequences"] == ["\n\nHuman:"]


def test_an_inline_agent_sends_no_sampling_fields(agent, recording):  # type: ignore[no-untyped-def]  # noqa: F811
    run = make_run(agent, "default")
    drive_run(run.pk, worker_id="test-worker")
    (body,) = recording.bodies
    assert not {"temperature", "top_p", "top_k", "stop_sequences"} & set(body)


@pytest.mark.parametrize("field, value", [("temperature", 1.5), ("top_p", -0.1), ("top_k", -1), ("stop_sequences", [""])])
def test_the_scripted_api_refuses_out_of_range_sampling_like_the_real_one(field, value):  # type: ignore[no-untyped-def]
    client = make_client(transport=RecordingTransport(redis_url=""), max_retries=0)
    with pytest.raises(anthropic.BadRequestError, match=field):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}], extra_body={field: value})
    reply = client.messages.create(model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                                   stop_sequences=["END"], extra_body={"temperature": 0.5, "top_p": 1, "top_k": 5})
    assert reply.stop_reason == "end_turn"
