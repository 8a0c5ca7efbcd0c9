"""The demo step's prompts and the prompt-fetch benchmark."""

from __future__ import annotations

import io
import json

from django.core.management import call_command

from agentops.prompts import demo
from agentops.prompts.models import LabelMove, Prompt, PromptVersion
from runs import demo as runs_demo
from tenants.models import Role


def test_the_demo_seeds_three_prompts_with_moves_a_rollback_and_is_idempotent(tenant, members):  # type: ignore[no-untyped-def]
    agents = runs_demo.setup_tenant(tenant, members[Role.ADMIN])
    moved: list[tuple[str, int]] = []
    assert demo.setup_tenant(tenant, members[Role.ADMIN], agents, after_move=lambda p, label, n: moved.append((p, n)))
    assert set(Prompt.objects.for_tenant(tenant).values_list("name", flat=True)) == set(demo.PROMPTS)
    assert PromptVersion.objects.for_tenant(tenant).count() == 9
    support = Prompt.objects.for_tenant(tenant).get(name="support-agent")
    labels = {label.name: label.version.number for label in support.labels.select_related("version")}
    assert labels == {"production": 2, "staging": 4}
    assert LabelMove.objects.for_tenant(tenant).filter(prompt=support, rollback=True).count() == 1
    assert all(m.reason == demo.SEEDED for m in LabelMove.objects.for_tenant(tenant).filter(override=True))
    assert ("support-agent", 1) in moved and ("support-agent", 3) in moved
    agents["support"].refresh_from_db()
    assert agents["support"].prompt == support
    assert not demo.setup_tenant(tenant, members[Role.ADMIN], agents)
    assert PromptVersion.objects.for_tenant(tenant).count() == 9


def test_prompt_fetch_bench_reports_percentiles(db):  # type: ignore[no-untyped-def]
    out = io.StringIO()
    call_command("bench", "prompt-fetch", opt=["requests=100", "warmup=5"], stdout=out)
    figures = json.loads(out.getvalue().strip().splitlines()[-1])
    assert figures["samples"] == 100 and "load average" in out.getvalue()
    assert 0 < figures["key_check_p50_ms"] and 0 < figures["fetch_304_p50_ms"] <= figures["fetch_304_p99_ms"]


def test_the_demo_showcases_a_templated_run_and_a_try_it_pair(tenant, members):  # type: ignore[no-untyped-def]
    agents = runs_demo.setup_tenant(tenant, members[Role.ADMIN])
    demo.setup_tenant(tenant, members[Role.ADMIN], agents)
    templated, candidate, production = demo.showcase(tenant, agents, operator=members[Role.OPERATOR], editor=members[Role.PROMPT_EDITOR],
                                                     timeout=0)
    assert templated.input == "Ticket from Ada Lovelace: I was charged twice." and templated.prompt_version_number == 2
    assert not templated.playground
    assert candidate.playground and production.playground
    assert (candidate.prompt_version_number, production.prompt_version_number) == (4, 2)
