"""The operator inbox: pending escalations, one escalation's context, decide (htmx), history.

Operators and admins read and decide; every other role gets 403, non-members 404 (tenant_view).
Escalations are always fetched through the URL's tenant, so another tenant's id is a 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_POST

from agentops.escalations import selectors, services
from agentops.escalations.models import Escalation, EscalationStatus
from agentops.keyset import BadCursor, keyset_page
from runs.models import TERMINAL_STATUSES, RunStatus
from tenants.access import TenantContext, tenant_view
from tenants.models import Role

OPERATORS = (Role.ADMIN, Role.OPERATOR)
# The inbox shows this many at a time, most urgent first; "Next" continues by a keyset cursor (no OFFSET).
INBOX_SHOWN = 50
HISTORY_SHOWN = 50


def _escalation_or_404(ctx: TenantContext, escalation_id: str) -> Escalation:
    try:
        return selectors.escalation_get(tenant=ctx.tenant, escalation_id=escalation_id)
    except Escalation.DoesNotExist:
        raise Http404("No such escalation.")


def run_url(slug: str, run_id: int) -> str:
    """The run's console page when the runs console is installed, else empty."""
    for kwargs in ({"slug": slug, "run_id": run_id}, {"slug": slug, "pk": run_id}):
        try:
            return reverse("runs:detail", kwargs=kwargs)
        except NoReverseMatch:
            continue
    return ""


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@tenant_view(read=OPERATORS, write=())
def inbox(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    after = request.GET.get("after", "")
    try:
        rows = selectors.pending_top(tenant=ctx.tenant, limit=INBOX_SHOWN + 1, after=after)
    except BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    pending = selectors.decorate(rows[:INBOX_SHOWN])
    context: dict[str, Any] = {
        "ctx": ctx, "pending": pending, "counts": selectors.escalation_counts(tenant=ctx.tenant), "after": after,
        "next_cursor": selectors.pending_cursor(pending[-1]) if len(rows) > INBOX_SHOWN else "",
        "failed_deliveries": list(selectors.failed_deliveries(tenant=ctx.tenant)[:5]),
    }
    # The table polls itself so SLA timers and new arrivals appear without a reload.
    if _is_htmx(request) and request.headers.get("HX-Target") == "inbox-table":
        return render(request, "escalations/partials/inbox_table.html", context)
    return render(request, "escalations/inbox.html", context)


@tenant_view(read=OPERATORS, write=())
def history(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    filters = selectors.HistoryFilters.from_query(request.GET)
    # Newest decision first (pending ones, which have none, by when they were asked), 50 a page by a keyset
    # cursor: no COUNT(*) and no OFFSET over a long history.
    field = "requested_at" if filters.status == EscalationStatus.PENDING else "decided_at"
    qs = selectors.escalations_history(tenant=ctx.tenant, filters=filters)
    try:
        page = keyset_page(qs if field == "requested_at" else qs.exclude(decided_at=None), field=field,
                           after=request.GET.get("after", ""), size=HISTORY_SHOWN)
    except BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    return render(request, "escalations/history.html", {
        "ctx": ctx, "page": page, "filters": filters, "choices": selectors.history_choices(tenant=ctx.tenant),
    })


@tenant_view(read=OPERATORS, write=())
def detail(request: HttpRequest, ctx: TenantContext, escalation_id: str) -> HttpResponse:
    escalation = _escalation_or_404(ctx, escalation_id)
    return _detail_page(request, ctx, escalation)


def _detail_page(request: HttpRequest, ctx: TenantContext, escalation: Escalation, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "ctx": ctx, "e": escalation, "error": error, "run_url": run_url(ctx.tenant.slug, escalation.run_id),
        **selectors.escalation_detail(escalation=escalation), **_run_progress(escalation),
    }
    return render(request, "escalations/detail.html", context, status=status)


@tenant_view(read=OPERATORS, write=OPERATORS)
@require_POST
def decide(request: HttpRequest, ctx: TenantContext, escalation_id: str) -> HttpResponse:
    escalation = _escalation_or_404(ctx, escalation_id)
    # Only these fields are read: the arguments come from the stored call, never the form.
    decision = request.POST.get("decision", "")
    try:
        escalation = services.escalation_decide(
            escalation_id=escalation.pk, tenant=ctx.tenant, decision=decision,
            comment=request.POST.get("comment", ""), actor=request.user,
            arguments_sha256=request.POST.get("arguments_sha256", ""),
            result=request.POST.get("result") if decision == "mark_done" else None,
        )
    except services.AlreadyDecided as exc:
        return _decided(request, ctx, exc.escalation, error=str(exc), status=409)
    except services.ArgumentsMismatch as exc:
        return _decided(request, ctx, escalation, error=str(exc), status=409)
    except ValidationError as exc:
        return _decided(request, ctx, escalation, error=" ".join(exc.messages), status=400)
    return _decided(request, ctx, escalation, just_decided=True)


def _decided(request: HttpRequest, ctx: TenantContext, escalation: Escalation, *, error: str = "", status: int = 200,
             just_decided: bool = False) -> HttpResponse:
    if not _is_htmx(request):
        if error:
            return _detail_page(request, ctx, escalation, error=error, status=status)
        messages.success(request, f"Escalation {escalation.pk} {escalation.status}; the run continues.")
        return redirect("escalations:detail", slug=ctx.tenant.slug, escalation_id=escalation.pk)
    context = {
        "ctx": ctx, "e": escalation, "error": error, "just_decided": just_decided, "oob": True,
        "run": escalation.run, "run_url": run_url(ctx.tenant.slug, escalation.run_id), "sla": selectors.sla_state(escalation),
        **_run_progress(escalation),
    }
    return render(request, "escalations/partials/decision.html", context, status=status)


def _run_progress(escalation: Escalation) -> dict[str, Any]:
    run = escalation.run
    run.refresh_from_db(fields=["status", "outcome", "result", "error_message", "cost", "iterations"])
    waiting_again = run.status == RunStatus.AWAITING_APPROVAL and Escalation.objects.for_tenant(run.tenant_id).filter(
        run=run, status=EscalationStatus.PENDING
    ).exists()
    # Poll while the run is on its way: queued/running, or released but not yet resumed.
    moving = run.status not in TERMINAL_STATUSES and run.status != RunStatus.PAUSED and not waiting_again
    return {"run": run, "run_moving": moving and escalation.status != EscalationStatus.PENDING, "waiting_again": waiting_again}


@tenant_view(read=OPERATORS, write=())
def run_progress(request: HttpRequest, ctx: TenantContext, escalation_id: str) -> HttpResponse:
    """The decided escalation's run, as a fragment the decision panel polls until the run settles; the
    page's summary (run status, cost, model calls) rides along out of band so it moves with it."""
    escalation = _escalation_or_404(ctx, escalation_id)
    context = {"ctx": ctx, "e": escalation, "run_url": run_url(ctx.tenant.slug, escalation.run_id),
               "sla": selectors.sla_state(escalation), **_run_progress(escalation)}
    return render(request, "escalations/partials/run_progress_poll.html", context)


@tenant_view(read=OPERATORS, write=OPERATORS)
@require_POST
def bulk_reject(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Reject the selected pending escalations with one reason (each decided on its own, so one
    already decided elsewhere does not stop the others)."""
    ids = [i for i in request.POST.getlist("ids") if i.isascii() and i.isdigit()][:200]
    comment = request.POST.get("comment", "")
    if not ids:
        raise BadRequest("Select at least one escalation to reject.")
    rejected, skipped = 0, 0
    for escalation_id in ids:
        try:
            services.escalation_decide(escalation_id=int(escalation_id), tenant=ctx.tenant, decision="reject", comment=comment,
                                       actor=request.user)
            rejected += 1
        except (services.AlreadyDecided, Escalation.DoesNotExist):
            skipped += 1
        except ValidationError as exc:
            raise BadRequest(" ".join(exc.messages)) from exc
    note = f"Rejected {rejected} escalation{'s' if rejected != 1 else ''}."
    if skipped:
        note += f" {skipped} had already been decided or expired."
    messages.success(request, note)
    return redirect("escalations:inbox", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def expire_now(request: HttpRequest, ctx: TenantContext, escalation_id: str) -> HttpResponse:
    escalation = _escalation_or_404(ctx, escalation_id)
    if services.escalation_expire_now(tenant=ctx.tenant, escalation_id=escalation.pk, actor=request.user):
        messages.success(request, f"Escalation {escalation.pk} expired.")
    else:
        messages.error(request, f"Escalation {escalation.pk} was no longer pending.")
    return redirect("escalations:detail", slug=ctx.tenant.slug, escalation_id=escalation.pk)
