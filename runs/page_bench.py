"""``manage.py bench run-page``: the run page's server time at 10 / 100 / 500 / 2,000 turns.

Seeds one running run per size in a ``bench-run-page`` tenant (once; a size already seeded is kept):
turns alternate an assistant turn (text and a ``search_knowledge_base`` tool_use) and a user turn
(its tool_result), with a tool-call ledger row and a span per model step, as a real run leaves them.
Then times, through the test client as a logged-in admin, the full page (``runs:detail``) and the
live update the page polls with (``runs:detail_live?after_seq=`` one turn before the last, so one
new turn comes back to append). Prints the p50 per size with the machine's load.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agentops.bench import benchmark, machine_load
from runs.models import Agent, Message, Run, Span, ToolCall
from tenants.models import Membership, Role, Tenant, Tier

SLUG = "bench-run-page"


def _seed_run(tenant: Tenant, agent: Agent, turns: int) -> Run:
    """A running run with ``turns`` turns (kept between invocations: the input names the size)."""
    label = f"bench run page: {turns} turns"
    run = Run.objects.filter(tenant=tenant, input=label).first()
    if run is not None and Message.objects.filter(run=run).count() == turns:
        return run
    with transaction.atomic():
        if run is not None:
            run.delete()
        now = timezone.now()
        trace = uuid.uuid4().hex
        run = Run.objects.create(tenant=tenant, agent=agent, input=label, status="running", trace_id=trace,
                                 started_at=now - timedelta(seconds=turns), iterations=turns // 2)
        messages, calls, spans = [], [], []
        for seq in range(1, turns + 1):
            at = now - timedelta(seconds=turns - seq)
            use_id = f"toolu_{seq // 2:06d}"
            if seq % 2:  # an assistant turn: some text and a tool call
                content: list[dict[str, Any]] = [
                    {"type": "text", "text": f"Step {seq}: let me look that up in the knowledge base before I answer."},
                    {"type": "tool_use", "id": use_id, "name": "search_knowledge_base", "input": {"query": f"refund policy {seq}"}}]
                messages.append(Message(tenant=tenant, run=run, seq=seq, role="assistant", content=content, model="claude-haiku-4-5",
                                        stop_reason="tool_use", usage={"input_tokens": 900 + seq, "output_tokens": 60}, created_at=at))
                calls.append(ToolCall(tenant=tenant, run=run, tool_use_id=use_id, tool_name="search_knowledge_base",
                                      arguments={"query": f"refund policy {seq}"}, status="succeeded", attempts=1, duration_ms=3.2,
                                      result=[{"type": "text", "text": "Refunds within 30 days."}], created_at=at, finished_at=at))
                spans.append(Span(tenant=tenant, run=run, trace_id=trace, span_id=f"{seq:016x}", name="model.call", started_at=at,
                                  ended_at=at + timedelta(milliseconds=400), duration_ms=400.0, attributes={"seq": seq}))
            else:  # the user turn carrying the tool's result
                content = [{"type": "tool_result", "tool_use_id": use_id,
                            "content": [{"type": "text", "text": "Refunds are accepted within 30 days of delivery."}]}]
                messages.append(Message(tenant=tenant, run=run, seq=seq, role="user", content=content, created_at=at))
        Message.objects.bulk_create(messages, batch_size=2000)
        ToolCall.objects.bulk_create(calls, batch_size=2000)
        Span.objects.bulk_create(spans, batch_size=2000)
    return run


def _setup() -> tuple[Tenant, Agent, Any]:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tenant, _ = Tenant.objects.get_or_create(slug=SLUG, defaults={"name": "Bench: run page", "tier": tier})
    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="bench", defaults={"system_prompt": "Benchmark agent.",
                                                                                  "tools": ["search_knowledge_base"]})
    user, _ = get_user_model().objects.get_or_create(username="bench-run-page-admin")
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
    return tenant, agent, user


def _p50(client: Client, url: str, repeat: int, must: bytes) -> tuple[float, int]:
    """Median ms of ``repeat`` GETs (after one warm-up), and the response size; fails on an empty answer."""
    samples, size = [], 0
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        resp = client.get(url)
        ms = (time.perf_counter() - t0) * 1000
        if resp.status_code != 200 or must not in resp.content:
            raise RuntimeError(f"{url} answered {resp.status_code} without {must!r}: the benchmark measured nothing")
        size = len(resp.content)
        if i:
            samples.append(ms)
    return statistics.median(samples), size


@benchmark("run-page", help="Run page server time at 10/100/500/2000 turns: the full page and a live update (?after_seq=).",
           sizes="10,100,500,2000", repeat=9)
def run_page(*, stdout: Any, sizes: Any, repeat: int) -> dict[str, Any]:
    tenant, agent, user = _setup()
    client = Client()
    client.force_login(user)
    figures: dict[str, Any] = {}
    for turns in [int(s) for s in str(sizes).split(",") if s.strip()]:
        run = _seed_run(tenant, agent, turns)
        kwargs = {"slug": tenant.slug, "run_id": run.pk}
        page_ms, page_bytes = _p50(client, reverse("runs:detail", kwargs=kwargs), repeat, must=b"refund policy")
        live_url = reverse("runs:detail_live", kwargs=kwargs) + f"?after_seq={turns - 1}&shown=running"
        live_ms, live_bytes = _p50(client, live_url, repeat, must=b"Refunds are accepted")
        figures[f"turns_{turns}_page_ms"] = round(page_ms, 2)
        figures[f"turns_{turns}_page_kb"] = round(page_bytes / 1024, 1)
        figures[f"turns_{turns}_live_ms"] = round(live_ms, 2)
        figures[f"turns_{turns}_live_kb"] = round(live_bytes / 1024, 1)
        stdout.write(f"{turns:5} turns: page p50 {page_ms:7.2f} ms ({page_bytes / 1024:6.1f} KB) | live update p50 {live_ms:7.2f} ms "
                     f"({live_bytes / 1024:5.1f} KB)")
    stdout.write(f"load {machine_load()} (pid {os.getpid()})")
    return figures
