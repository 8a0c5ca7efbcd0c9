"""Console pages for runs, agents and tool grants.

Thin views: every object is fetched through the tenant (another tenant's id is a 404, like a
missing one), writes go through ``runs.services``, and bad input re-renders the form with a 400.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agentops.keyset import BadCursor, keyset_page
from runs import console_selectors as cs
from runs import selectors, services
from runs.forms import AgentForm, GrantForm, RunFilterForm, RunStartForm, grant_form_initial, scenario_choices
from runs.models import Agent, Run, ToolGrant
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.models import ALL_ROLES, Role

RUN_WRITERS = (Role.ADMIN, Role.OPERATOR)
PAGE_SIZE = 50



def _run_or_404(ctx: TenantContext, run_id: str) -> Run:
    try:
        return selectors.run_get(tenant=ctx.tenant, run_id=id_or_404(run_id))
    except Run.DoesNotExist:
        raise Http404("No such run.")


def _agent_or_404(ctx: TenantContext, agent_id: str) -> Agent:
    agent = Agent.objects.for_tenant(ctx.tenant).filter(pk=id_or_404(agent_id)).first()
    if agent is None:
        raise Http404("No such agent.")
    return agent


def _flag(request: HttpRequest, name: str = "enabled") -> bool:
    value = request.POST.get(name, "")
    if value not in ("0", "1"):
        raise ValidationError(f"Send {name}=1 or {name}=0.")
    return value == "1"


# -- runs ------------------------------------------------------------------------------------


@tenant_view(read=ALL_ROLES)
def run_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    agents = list(cs.agents_for_tenant(ctx.tenant).only("id", "name"))
    form = RunFilterForm(request.GET or None, agents=agents)
    filters: dict[str, Any] = {}
    status = 200
    if form.is_bound:
        if form.is_valid():
            data = form.cleaned_data
            filters = {"status": data["status"], "agent_id": data["agent"], "outcome": data["outcome"], "q": data["q"].strip(),
                       "flag": data["flag"], "model": data["model"].strip(), "cost_min": data["cost_min"], "cost_max": data["cost_max"],
                       "created_from": data["created_from"], "created_to": data["created_to"], "kind": data["kind"]}
        else:
            status = 400
    runs = cs.runs_for_list(tenant=ctx.tenant, **filters) if status == 200 else cs.runs_for_list(tenant=ctx.tenant).none()
    try:
        page = keyset_page(runs, field="created_at", after=request.GET.get("after", ""), size=PAGE_SIZE)
    except BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    cs.mark_gated(page.items, tenant=ctx.tenant)
    outcomes = cs.outcomes_for_tenant(ctx.tenant)
    chosen = form.data.get("outcome", "") if form.is_bound else ""
    if chosen and chosen not in outcomes and len(chosen) <= 64:
        outcomes = sorted([*outcomes, chosen])
    return render(
        request, "runs/list.html",
        {"form": form, "page": page, "runs": page.items, "outcomes": outcomes,
         "filtered": status == 400 or any(v not in (None, "") for v in filters.values()), "can_start": ctx.role in RUN_WRITERS},
        status=status,
    )


@tenant_view(read=RUN_WRITERS, write=RUN_WRITERS)
def run_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    agents = list(cs.agents_for_tenant(ctx.tenant))
    scenarios = scenario_choices()
    status = 200
    if request.method == "POST":
        form = RunStartForm(request.POST, agents=agents, scenarios=scenarios)
        status = 400
        if form.is_valid():
            metadata = {"scenario": form.cleaned_data["scenario"]} if form.cleaned_data.get("scenario") else {}
            try:
                run = services.run_submit(
                    tenant=ctx.tenant, agent=form.cleaned_data["agent"], input=form.cleaned_data["input"],
                    submitted_by=request.user, role=ctx.role, metadata=metadata, variables=form.cleaned_data.get("variables"),
                )
            except ValidationError as exc:
                form.add_error("variables" if form.cleaned_data.get("variables") is not None else "input", exc)
            except services.RunRefused as exc:
                form.add_error(None, str(exc))
                status = 409 if exc.type == "kill_switch" else 429
            else:
                messages.success(request, f"Run {run.pk} queued.")
                return redirect("runs:detail", slug=ctx.tenant.slug, run_id=run.pk)
    else:
        initial: dict[str, Any] = {}
        wanted = request.GET.get("agent", "")
        if wanted.isascii() and wanted.isdigit() and any(str(a.pk) == wanted for a in agents):
            initial["agent"] = wanted
        form = RunStartForm(initial=initial, agents=agents, scenarios=scenarios)
    return render(request, "runs/new.html", {"form": form, "agents": agents}, status=status)


def _run_context(ctx: TenantContext, run: Run, after_seq: int | None = None) -> dict[str, Any]:
    page = cs.run_page(run, after_seq=after_seq)
    return {
        "run": run, "page": page, "can_act": ctx.role in RUN_WRITERS,
        "can_pause": run.status in ("queued", "running") and not run.pause_requested,
        "can_resume": run.status in services.RESUMABLE,
        # A run a worker has been asked to stop shows the request, not a second Cancel button.
        "can_cancel": not run.is_terminal and not run.cancel_requested,
        "live": not run.is_terminal,
    }


@tenant_view(read=ALL_ROLES, write=())
def run_detail(request: HttpRequest, ctx: TenantContext, run_id: str, live: bool = False) -> HttpResponse:
    """The run page; ``live`` (or an htmx request) returns only the part that polls."""
    run = _run_or_404(ctx, run_id)
    if live or request.headers.get("HX-Request"):
        # The poll says the newest turn it has; it gets the turns after it to append, not the whole log.
        after = request.GET.get("after_seq", "")
        if after and not (after.isascii() and after.isdigit() and len(after) < 10):
            raise BadRequest("after_seq must be a turn number.")
        context = _run_context(ctx, run, after_seq=int(after) if after else None)
        shown = request.GET.get("shown", "")
        context["clear_flash"] = bool(shown) and shown != run.status
        return render(request, "runs/partials/run_live.html", context)
    context = _run_context(ctx, run)
    context["recalled"] = selectors.recalled_facts(run)  # the full page only: the run recalls at its first call
    return render(request, "runs/detail.html", context)


@tenant_view(read=ALL_ROLES, write=())
def run_log_earlier(request: HttpRequest, ctx: TenantContext, run_id: str) -> HttpResponse:
    """The ``TURNS_SHOWN`` turns before ``?before=<seq>`` (htmx: replaces the "Earlier turns" button)."""
    run = _run_or_404(ctx, run_id)
    before = request.GET.get("before", "")
    if before and not (before.isascii() and before.isdigit() and len(before) < 10):
        raise BadRequest("before must be a turn number.")
    entries, earlier = cs.earlier_log(run, before_seq=int(before) if before else 2**31)
    return render(request, "runs/partials/log_entries.html", {"run": run, "entries": entries, "earlier_before": earlier})


def _run_action(request: HttpRequest, ctx: TenantContext, run_id: str, action: str) -> HttpResponse:
    run = _run_or_404(ctx, run_id)
    try:
        if action == "cancel":
            run = services.run_cancel(run=run, actor=request.user)
            note = "Run cancelled." if run.is_terminal else "Cancel requested: the run stops before its next model call."
        elif action == "pause":
            run = services.run_pause(run=run, actor=request.user)
            note = "Run paused." if run.status == "paused" else "Pause requested: the run stops before its next model call."
        else:
            run = services.run_resume(run=run, actor=request.user)
            note = "Run resumed: it continues from its last persisted turn."
    except (ValidationError, services.RunRefused) as exc:
        error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        context = _run_context(ctx, _run_or_404(ctx, run_id))
        context["action_error"] = error
        return render(request, "runs/detail.html", context, status=409)
    messages.success(request, note)
    return redirect("runs:detail", slug=ctx.tenant.slug, run_id=run.pk)


@tenant_view(read=RUN_WRITERS, write=RUN_WRITERS)
@require_POST
def run_cancel(request: HttpRequest, ctx: TenantContext, run_id: str) -> HttpResponse:
    return _run_action(request, ctx, run_id, "cancel")


@tenant_view(read=RUN_WRITERS, write=RUN_WRITERS)
@require_POST
def run_pause(request: HttpRequest, ctx: TenantContext, run_id: str) -> HttpResponse:
    return _run_action(request, ctx, run_id, "pause")


@tenant_view(read=RUN_WRITERS, write=RUN_WRITERS)
@require_POST
def run_resume(request: HttpRequest, ctx: TenantContext, run_id: str) -> HttpResponse:
    return _run_action(request, ctx, run_id, "resume")


# -- agents ----------------------------------------------------------------------------------

AGENT_READERS = (Role.ADMIN, Role.PROMPT_EDITOR)


@tenant_view(read=AGENT_READERS, write=(Role.ADMIN,))
def agent_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return render(request, "runs/agents.html", {"agents": cs.agents_with_stats(ctx.tenant), "can_edit": ctx.role == Role.ADMIN})


def _agent_form_page(request: HttpRequest, ctx: TenantContext, form: AgentForm, agent: Agent | None, status: int = 200) -> HttpResponse:
    return render(
        request, "runs/agent_form.html",
        {"form": form, "agent": agent, "can_edit": ctx.role == Role.ADMIN, "known_models": form.known_models,
         "tool_specs": form.tool_specs},
        status=status,
    )


def _agent_save(request: HttpRequest, ctx: TenantContext, agent: Agent | None) -> HttpResponse:
    form = AgentForm(request.POST, tenant=ctx.tenant, agent=agent)
    if form.is_valid():
        try:
            saved = services.agent_save(tenant=ctx.tenant, actor=request.user, data=form.as_data(), agent=agent)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                form.add_error(None, exc)
        else:
            messages.success(request, f"Agent {saved.name} {'created' if agent is None else 'saved'}.")
            return redirect("runs:agent_edit", slug=ctx.tenant.slug, agent_id=saved.pk)
    return _agent_form_page(request, ctx, form, agent, status=400)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def agent_new(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method == "POST":
        return _agent_save(request, ctx, None)
    return _agent_form_page(request, ctx, AgentForm(tenant=ctx.tenant), None)


@tenant_view(read=AGENT_READERS, write=(Role.ADMIN,))
def agent_edit(request: HttpRequest, ctx: TenantContext, agent_id: str) -> HttpResponse:
    agent = _agent_or_404(ctx, agent_id)
    if request.method == "POST":
        return _agent_save(request, ctx, agent)
    return _agent_form_page(request, ctx, AgentForm(tenant=ctx.tenant, agent=agent), agent)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def agent_killswitch(request: HttpRequest, ctx: TenantContext, agent_id: str) -> HttpResponse:
    agent = _agent_or_404(ctx, agent_id)
    try:
        enabled = _flag(request)
    except ValidationError as exc:
        raise BadRequest(" ".join(exc.messages)) from exc
    services.kill_switch_set(tenant=ctx.tenant, actor=request.user, enabled=enabled, agent=agent)
    messages.success(request, f"Kill switch {'on' if enabled else 'off'} for {agent.name}."
                     + (" New runs are refused; queued runs are paused." if enabled else ""))
    return redirect(_next(request, reverse("runs:agents", kwargs={"slug": ctx.tenant.slug})))


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def tenant_killswitch(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    try:
        enabled = _flag(request)
    except ValidationError as exc:
        raise BadRequest(" ".join(exc.messages)) from exc
    services.kill_switch_set(tenant=ctx.tenant, actor=request.user, enabled=enabled)
    messages.success(request, f"Tenant kill switch {'on: every agent refuses new runs' if enabled else 'off'}.")
    return redirect("runs:agents", slug=ctx.tenant.slug)


def _next(request: HttpRequest, default: str) -> str:
    """Only a same-tenant console path is followed back; anything else goes to ``default``."""
    target = request.POST.get("next", "")
    slug = request.tenant_ctx.tenant.slug  # type: ignore[attr-defined]
    if target.startswith(f"/t/{slug}/") and "//" not in target and "\\" not in target:
        return target
    return default


# -- grants ----------------------------------------------------------------------------------


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def grant_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    agents = list(cs.agents_for_tenant(ctx.tenant))
    status = 200
    editing: ToolGrant | None = None
    if request.method == "POST":
        form = GrantForm(request.POST, agents=agents, tenant=ctx.tenant)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                grant = services.grant_save(
                    tenant=ctx.tenant, actor=request.user, tool_name=data["tool_name"], agent=data["agent"], role=data["role"],
                    requires_approval=data["requires_approval"], allow=data["allow"], approval_over=data["approval_over"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Granted {grant}.")
                return redirect("runs:grants", slug=ctx.tenant.slug)
    else:
        edit_id = request.GET.get("edit", "")
        if edit_id:
            editing = cs.grants_for_tenant(ctx.tenant).filter(pk=id_or_404(edit_id)).first()
            if editing is None:
                raise Http404("No such grant.")
        form = GrantForm(initial=grant_form_initial(editing) if editing else None, agents=agents, tenant=ctx.tenant)
    return render(
        request, "runs/grants.html",
        {"form": form, "grants": cs.grants_for_tenant(ctx.tenant), "editing": editing, "tool_specs": form.specs},
        status=status,
    )


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def grant_revoke(request: HttpRequest, ctx: TenantContext, grant_id: str) -> HttpResponse:
    ident = id_or_404(grant_id)
    try:
        services.grant_revoke(tenant=ctx.tenant, actor=request.user, grant_id=ident)
    except ToolGrant.DoesNotExist:
        raise Http404("No such grant.")
    messages.success(request, "Grant revoked.")
    return redirect("runs:grants", slug=ctx.tenant.slug)
