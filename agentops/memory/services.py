"""What people do to memory from the console or the API: delete a fact, erase a subject. Audited.

The audit rows name the subject and how many facts went, never the facts' text: an erasure that
kept a copy of what it erased in the audit log would not be one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from agentops.memory import facts
from agentops.memory.models import Fact
from tenants.models import ApiKey, Tenant
from tenants.services import audit_record


@dataclass(frozen=True)
class MemorySubject:
    """The audit target of an erasure (the rows themselves are gone)."""

    subject: str
    pk: str = ""

    def __str__(self) -> str:
        return f"memory about {self.subject}"


@dataclass(frozen=True)
class MemoryFact:
    """The audit target of a deleted fact: its id and subject, not its text."""

    pk: int
    subject: str

    def __str__(self) -> str:
        return f"fact #{self.pk} about {self.subject}"


@transaction.atomic
def fact_delete(*, tenant: Tenant, actor: Any, fact_id: int, actor_key: ApiKey | None = None) -> Fact:
    """Raises Fact.DoesNotExist for another tenant's or a missing fact."""
    fact = Fact.objects.for_tenant(tenant).select_for_update().get(pk=fact_id)
    _, scrubbed = facts.delete_fact(tenant_id=tenant.pk, fact_id=fact.pk)
    audit_record(
        tenant=tenant,
        actor=actor,
        actor_key=actor_key,
        action="memory.fact_delete",
        target=MemoryFact(fact_id, fact.subject),
        before={"source": fact.source, "source_run_id": fact.source_run_id, "flags": fact.flags},
        after=scrubbed.as_audit(),
    )
    return fact


@transaction.atomic
def subject_erase(*, tenant: Tenant, actor: Any, subject: str, actor_key: ApiKey | None = None) -> int:
    """Every fact about ``subject`` goes from the store (so from recall and every page) and from the
    tenant's run logs (the ``remember`` calls, word-for-word repeats); the audit row stays, with counts."""
    erased, scrubbed = facts.erase_subject(tenant_id=tenant.pk, subject=subject)
    audit_record(
        tenant=tenant,
        actor=actor,
        actor_key=actor_key,
        action="memory.subject_erase",
        target=MemorySubject(subject),
        after={"facts_erased": erased, **scrubbed.as_audit()},
    )
    return erased
