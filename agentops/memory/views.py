"""The Memory pages: a tenant's facts (search, inspect, delete) and erasing everything about a subject.

Every role reads; admins and operators delete and erase (as they act on runs).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agentops.keyset import BadCursor, keyset_page
from agentops.memory import facts, selectors, services
from agentops.memory.models import Fact
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.models import ALL_ROLES, Role

WRITERS = (Role.ADMIN, Role.OPERATOR)
PAGE_SIZE = 50


def _param(request: HttpRequest, name: str, limit: int) -> str:
    value = request.GET.get(name, "").strip()
    if len(value) > limit or "\x00" in value:
        raise BadRequest(f"'{name}' must be at most {limit} characters, without NUL bytes.")
    return value


@tenant_view(read=ALL_ROLES, write=())
def fact_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    subject, q = _param(request, "subject", facts.MAX_SUBJECT), _param(request, "q", 500)
    flagged = {"": None, "1": True, "0": False}.get(request.GET.get("flagged", ""))
    if request.GET.get("flagged", "") not in ("", "1", "0"):
        raise BadRequest("'flagged' is 1, 0 or empty.")
    try:
        page = keyset_page(
            selectors.facts_for_list(tenant=ctx.tenant, subject=subject, q=q, flagged=flagged),
            field="created_at",
            after=request.GET.get("after", ""),
            size=PAGE_SIZE,
        )
    except BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    return render(
        request,
        "memory/list.html",
        {
            "page": page,
            "subject": subject,
            "q": q,
            "flagged": request.GET.get("flagged", ""),
            "can_write": ctx.has(*WRITERS),
        },
    )


@tenant_view(read=ALL_ROLES, write=())
def fact_detail(request: HttpRequest, ctx: TenantContext, fact_id: str) -> HttpResponse:
    fact = selectors.fact_get(tenant=ctx.tenant, fact_id=id_or_404(fact_id))
    if fact is None:
        raise Http404("No such fact.")
    return render(
        request,
        "memory/detail.html",
        {
            "fact": fact,
            "can_write": ctx.has(*WRITERS),
            "sees_agents": ctx.has(Role.ADMIN, Role.PROMPT_EDITOR),
        },
    )


@tenant_view(read=WRITERS, write=WRITERS)
@require_POST
def fact_delete(request: HttpRequest, ctx: TenantContext, fact_id: str) -> HttpResponse:
    """The form's button sends ``confirm=delete``; a POST without it changes nothing (400)."""
    ident = id_or_404(fact_id)
    if selectors.fact_get(tenant=ctx.tenant, fact_id=ident) is None:
        raise Http404("No such fact.")
    if request.POST.get("confirm") != "delete":
        raise BadRequest("Press the page's Delete button (confirm=delete) to delete a fact.")
    try:
        fact = services.fact_delete(tenant=ctx.tenant, actor=ctx.user, fact_id=ident)
    except Fact.DoesNotExist:
        raise Http404("No such fact.")
    messages.success(request, f"Fact #{fact_id} about {fact.subject} deleted.")
    return redirect("memory:list", slug=ctx.tenant.slug)


@tenant_view(read=WRITERS, write=WRITERS)
def subject_erase(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """GET: what will go, and a confirmation. POST with the subject typed again: erase it."""
    source = request.POST if request.method == "POST" else request.GET
    subject = source.get("subject", "").strip()
    if "\x00" in subject or len(subject) > facts.MAX_SUBJECT:
        raise BadRequest(f"The subject must be at most {facts.MAX_SUBJECT} characters, without NUL bytes.")
    status = 200
    if request.method == "POST":
        if not subject:
            raise BadRequest("Say which subject to erase.")
        if request.POST.get("confirm", "").strip() != subject:
            messages.error(request, "Type the subject again to confirm the erasure.")
            status = 400
        else:
            erased = services.subject_erase(tenant=ctx.tenant, actor=ctx.user, subject=subject)
            messages.success(
                request,
                f"Erased {erased} fact{'s' if erased != 1 else ''} about {subject}. The audit log records the erasure.",
            )
            return redirect("memory:list", slug=ctx.tenant.slug)
    counts = selectors.subject_count(tenant=ctx.tenant, subject=subject) if subject else {"facts": 0}
    return render(request, "memory/erase.html", {"subject": subject, "counts": counts}, status=status)
