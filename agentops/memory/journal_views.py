"""The failure journal's console pages: which agents have entries, one agent's entries, clearing one.

Every role reads; operators and admins clear (an audited action); another tenant's agent or entry is a
404, whoever asks.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agentops.memory import journal
from agentops.memory.models import FailureEntry
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.models import Role
from tenants.services import audit_record

CLEARS = (Role.OPERATOR, Role.ADMIN)


@tenant_view(write=())
def journal_index(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return render(
        request,
        "memory/journal_index.html",
        {"agents": journal.agents_with_entries(ctx.tenant.pk), "ttl_days": journal.ttl().days},
    )


@tenant_view(write=())
def journal_agent(request: HttpRequest, ctx: TenantContext, agent_id: str) -> HttpResponse:
    ident = id_or_404(agent_id)
    name = journal.agent_names(ctx.tenant.pk, [ident]).get(ident)
    if name is None:
        raise Http404("No such agent.")
    now = journal.now_()
    entries = [
        (e, journal.is_live(e, now))
        for e in journal.entries_for_agent(tenant_id=ctx.tenant.pk, agent_id=ident)
    ]
    return render(
        request,
        "memory/journal_agent.html",
        {
            "agent_id": ident,
            "agent_name": name,
            "entries": entries,
            "now": now,
            "ttl_days": journal.ttl().days,
            "can_clear": ctx.membership.role in CLEARS,
        },
    )


@tenant_view(read=CLEARS, write=CLEARS)
@require_POST
def journal_clear(request: HttpRequest, ctx: TenantContext, failure_id: str) -> HttpResponse:
    ident = id_or_404(failure_id)
    try:
        entry = FailureEntry.objects.for_tenant(ctx.tenant).get(pk=ident)
    except FailureEntry.DoesNotExist:
        raise Http404("No such journal entry.")
    if journal.clear(entry=entry, by=request.user.get_username()):
        audit_record(
            tenant=ctx.tenant,
            actor=request.user,
            action="journal.clear",
            target=entry,
            before={
                "tool": entry.tool,
                "error_type": entry.error_type,
                "pattern": entry.pattern,
                "occurrences": entry.occurrences,
                "subject": entry.subject,
            },
            after={"cleared": True},
        )
        messages.success(
            request,
            f"Cleared: {entry.tool} {entry.error_type}. The agent's next runs no longer get it in their note.",
        )
    else:
        messages.info(request, "That entry was already cleared.")
    return redirect("memory_journal:agent", slug=ctx.tenant.slug, agent_id=entry.agent_id)
