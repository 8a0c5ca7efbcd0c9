"""Finance pages: spend (charts), ledger export, caps, estimates; and the staff platform view."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone

from budgets import selectors, services
from budgets.cache_savings import cache_savings
from budgets.export import ledger_csv
from budgets.forms import EstimateForm, TenantCapsForm, UserCapForm
from budgets.models import CAP_FIELDS, AgentEstimate, CapScope, TenantCaps, UserCap
from budgets.pricing import UnknownModelPrice
from budgets.subjects import subjects
from tenants.access import TenantContext, tenant_view
from tenants.models import Membership, Role

FINANCE = (Role.ADMIN, Role.FINANCE)


def _range_or_400(request: HttpRequest) -> selectors.DateRange | HttpResponse:
    try:
        return selectors.date_range_parse(request.GET)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


def _plain(value: Decimal | None) -> str | None:
    """A stored cap as a person typed it: 734.5000000000 -> 734.50 (cents), 0.0012500000 -> 0.00125."""
    if value is None:
        return None
    cents = value.quantize(Decimal("0.01"))
    return f"{cents if cents == value else value.normalize():f}"


# "Most expensive runs" shows this many; "Next" continues by a (cost, id) cursor, never an OFFSET.
RUNS_SHOWN = 10


def _expensive_runs(request: HttpRequest, ctx: TenantContext, rng: Any) -> dict[str, Any]:
    after = request.GET.get("runs_after", "")
    try:
        rows = selectors.expensive_runs(tenant=ctx.tenant, rng=rng, limit=RUNS_SHOWN + 1, after=after)
    except selectors.BadRunsCursor as exc:
        raise BadRequest(str(exc)) from exc
    query = request.GET.copy()
    query.pop("runs_after", None)
    more = len(rows) > RUNS_SHOWN
    rows = rows[:RUNS_SHOWN]
    return {"runs": rows, "runs_after": after, "runs_query": query.urlencode(),
            "runs_next": selectors.expensive_runs_cursor(rows[-1]["run"]) if more else ""}


@tenant_view(read=FINANCE, write=())
def spend(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    rng = _range_or_400(request)
    if isinstance(rng, HttpResponse):
        return rng
    by = request.GET.get("by", "model")
    if by not in ("model", "agent", "user", "prompt_version"):
        raise BadRequest("by must be one of model, agent, user, prompt_version.")
    caps = services.effective_caps(tenant=ctx.tenant)
    util = selectors.cap_utilisation(tenant=ctx.tenant)
    per_day = selectors.spend_by_day(tenant=ctx.tenant, rng=rng, by=by)
    proj = selectors.projection(tenant=ctx.tenant, cap=caps[CapScope.TENANT_MONTH])
    return render(request, "budgets/spend.html", {
        "ctx": ctx, "rng": rng, "by": by, "per_day": per_day, "projection": proj,
        "utilisation": util, "utilisation_figure": selectors.utilisation_figure(util),
        **_expensive_runs(request, ctx, rng), "alerts": selectors.alerts_recent(tenant=ctx.tenant),
        "unknown": selectors.unknown_outcomes(tenant=ctx.tenant, rng=rng),
        "cache": cache_savings(tenant=ctx.tenant, start=rng.start, end=rng.end),
        "dimensions": ["model", "agent", "user", "prompt_version"], "query": request.GET.urlencode(),
    })


@tenant_view(read=FINANCE, write=())  # type: ignore[arg-type]  # a streamed response is not an HttpResponse subclass
def export(request: HttpRequest, ctx: TenantContext) -> HttpResponseBase:
    rng = _range_or_400(request)
    if isinstance(rng, HttpResponse):
        return rng
    resp = StreamingHttpResponse(ledger_csv(tenant=ctx.tenant, rng=rng), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="spend-{ctx.tenant.slug}-{rng.start}-{rng.end}.csv"'
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


def _members(ctx: TenantContext) -> list[tuple[int, str]]:
    return [(m.user_id, m.user.username) for m in Membership.objects.filter(tenant=ctx.tenant).select_related("user").order_by("user__username")]


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def caps(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    current = TenantCaps.objects.for_tenant(ctx.tenant).first()
    initial: dict[str, Any] = {}
    if current:
        initial = {f: _plain(getattr(current, f)) for f in CAP_FIELDS}
        initial["max_concurrent_runs"] = current.max_concurrent_runs
        initial["allowed_models"] = ", ".join(current.allowed_models or [])
    tenant_form = TenantCapsForm(initial=initial)
    user_form = UserCapForm(members=_members(ctx))
    status = 200
    if request.method == "POST":
        which = request.POST.get("form")
        try:
            if which == "tenant":
                tenant_form = TenantCapsForm(request.POST)
                if tenant_form.is_valid():
                    services.tenant_caps_set(tenant=ctx.tenant, actor=request.user, values=tenant_form.cleaned_data)
                    messages.success(request, "Tenant caps saved.")
                    return redirect("budgets:caps", slug=ctx.tenant.slug)
            elif which == "user":
                user_form = UserCapForm(request.POST, members=_members(ctx))
                if user_form.is_valid():
                    member = Membership.objects.select_related("user").get(tenant=ctx.tenant, user_id=user_form.cleaned_data["user"])
                    services.user_cap_set(
                        tenant=ctx.tenant, actor=request.user, user=member.user,
                        user_day_cost_cap=user_form.cleaned_data["user_day_cost_cap"],
                        user_month_cost_cap=user_form.cleaned_data["user_month_cost_cap"],
                    )
                    messages.success(request, f"Caps for {member.user.username} saved.")
                    return redirect("budgets:caps", slug=ctx.tenant.slug)
            else:
                raise BadRequest("Unknown form.")
        except ValidationError as exc:
            form = tenant_form if which == "tenant" else user_form
            if hasattr(exc, "error_dict"):
                for field, errs in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errs)
            else:
                form.add_error(None, exc)
        status = 400
    tier = ctx.tenant.tier
    return render(request, "budgets/caps.html", {
        "ctx": ctx, "tenant_form": tenant_form, "user_form": user_form, "tier": tier,
        "effective": services.effective_policy(tenant=ctx.tenant),
        "user_caps": UserCap.objects.for_tenant(ctx.tenant).select_related("user").order_by("user__username"),
    }, status=status)


@tenant_view(read=FINANCE, write=(Role.ADMIN,))
def estimates(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    agents = [(a.pk, a.name) for a in subjects().agents(tenant_id=ctx.tenant.pk)]
    form = EstimateForm(request.POST or None, agents=agents)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            agent = subjects().agent_get(tenant_id=ctx.tenant.pk, agent_id=form.cleaned_data["agent"])
            try:
                services.estimate_set(tenant=ctx.tenant, actor=request.user, agent=agent, values=form.cleaned_data)
                messages.success(request, f"Estimate for {agent.name} saved.")
                return redirect("budgets:estimates", slug=ctx.tenant.slug)
            except UnknownModelPrice as exc:
                form.add_error("model", str(exc))
            except ValidationError as exc:
                form.add_error(None, exc)
        status = 400
    return render(request, "budgets/estimates.html", {
        "ctx": ctx, "form": form, "rows": selectors.estimates_for(tenant=ctx.tenant),
        "has_estimates": AgentEstimate.objects.for_tenant(ctx.tenant).exists(),
    }, status=status)


@staff_member_required
def staff_spend(request: HttpRequest) -> HttpResponse:
    """Platform-wide spend for staff: every tenant, stacked by tenant."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET"])
    rng = _range_or_400(request)
    if isinstance(rng, HttpResponse):
        return rng
    by = request.GET.get("by", "tenant")
    if by not in ("tenant", "model"):
        raise BadRequest("by must be tenant or model.")
    return render(request, "budgets/staff_spend.html", {
        "rng": rng, "by": by, "per_day": selectors.spend_by_day(tenant=None, rng=rng, by=by),
        "projection": selectors.projection(tenant=None), "totals": selectors.platform_totals(rng=rng),
        "today": timezone.now().date(), "month_ago": timezone.now().date() - timedelta(days=29),
    })
