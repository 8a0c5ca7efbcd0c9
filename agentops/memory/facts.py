"""Writing facts (a minimal stand-in with the agreed signature; the facts work replaces this module,
adding validation, redaction, evaluators and de-duplication behind the same call)."""

from __future__ import annotations

from datetime import datetime

from agentops.memory.models import Fact
from agentops.redact import redact


def write_fact(
    *,
    tenant_id: int,
    subject: str,
    text: str,
    source: str,
    run_id: int | None,
    seq: int | None,
    agent_id: int | None,
    now: datetime,
) -> Fact:
    return Fact.objects.create(
        tenant_id=tenant_id,
        subject=subject[:200],
        text=redact(text)[:2000],
        source=source,
        source_run_id=run_id,
        source_seq=seq,
        agent_id=agent_id,
        created_at=now,
    )
