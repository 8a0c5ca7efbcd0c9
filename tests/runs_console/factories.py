"""Rows of a run built directly (no worker): agents, runs, messages, spans, tool calls, escalations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from agentops.escalations.models import Escalation
from runs.models import Agent, Message, Run, RunStatus, Span, ToolCall, ToolGrant


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"agent-{n}")
    system_prompt = "You are a careful support agent."
    model = "claude-sonnet-4-5"
    tools = factory.LazyFunction(lambda: ["search_knowledge_base", "issue_refund"])


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    tenant = factory.SelfAttribute("agent.tenant")
    agent = factory.SubFactory(AgentFactory)
    input = factory.Sequence(lambda n: f"Please help with request {n}")
    status = RunStatus.SUCCEEDED
    outcome = "end_turn"
    cost = Decimal("0.012345")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    tenant = factory.SelfAttribute("run.tenant")
    run = factory.SubFactory(RunFactory)
    seq = factory.Sequence(lambda n: n)
    role = "user"
    content = factory.LazyFunction(lambda: [{"type": "text", "text": "hello"}])


class SpanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Span

    tenant = factory.SelfAttribute("run.tenant")
    run = factory.SubFactory(RunFactory)
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    span_id = factory.Sequence(lambda n: f"{n:016x}")
    name = "invoke_agent"
    started_at = factory.LazyFunction(timezone.now)
    ended_at = factory.LazyAttribute(lambda o: o.started_at + timedelta(milliseconds=o.duration_ms))
    duration_ms = 100.0
    attributes = factory.LazyFunction(dict)


class ToolCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToolCall

    tenant = factory.SelfAttribute("run.tenant")
    run = factory.SubFactory(RunFactory)
    tool_use_id = factory.Sequence(lambda n: f"toolu_{n:020d}")
    tool_name = "search_knowledge_base"
    arguments = factory.LazyFunction(lambda: {"query": "refund policy"})
    status = "succeeded"
    attempts = 1
    duration_ms = 12.5
    result_size = 240


class EscalationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Escalation

    tenant = factory.SelfAttribute("run.tenant")
    run = factory.SubFactory(RunFactory)
    kind = Escalation.KIND_TOOL
    tool_use_id = factory.Sequence(lambda n: f"toolu_esc_{n}")
    tool_name = "issue_refund"
    arguments = factory.LazyFunction(lambda: {"account_id": "ACC-1001", "amount": "900.00"})
    arguments_sha256 = "0" * 64
    gate_reason = "Amount 900.00 is over the approval threshold 100.00"
    sla_due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=30))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToolGrant

    tool_name = "search_knowledge_base"


def runs_url(name: str, **kwargs: object) -> str:
    from django.urls import reverse

    return reverse(f"runs:{name}", kwargs={"slug": "acme", **kwargs})
