"""Console pages for prompts: list, versions, new version with live checks, diff, labels and their
history, rollback, the promotion policy and the try-it panel.

prompt_editor and admin write; operator, finance and viewer read. Only an admin may override the gate
(an editor's override is a 403). Every object is fetched through the tenant: another tenant's prompt
is a 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agentops.prompts import gate, playground, selectors, services
from agentops.prompts.forms import (
    LabelMoveForm,
    PolicyForm,
    PromptForm,
    RollbackForm,
    TryForm,
    VersionForm,
    version_initial,
)
from agentops.prompts.models import PRODUCTION, PromptVersion
from runs.forms import scenario_choices
from runs.models import Agent, Run
from runs.services import RunRefused
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.models import ALL_ROLES, Role

WRITERS = (Role.ADMIN, Role.PROMPT_EDITOR)


def _errors(exc: ValidationError) -> str:
    return " ".join(m for ms in getattr(exc, "message_dict", {"": exc.messages}).values() for m in ms)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def prompt_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = PromptForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                prompt = services.prompt_create(tenant=ctx.tenant, actor=ctx.user, **form.cleaned_data)
                return redirect("prompts:detail", ctx.tenant.slug, prompt.name)
            except ValidationError as exc:
                form.add_error(None, _errors(exc))
        status = 400
    return render(request, "prompts/list.html", {
        "prompts": selectors.prompt_list(tenant=ctx.tenant), "form": form, "can_write": ctx.has(*WRITERS),
        "margin": gate.gate_margin(tenant_id=ctx.tenant.pk), "policy_form": PolicyForm(initial={"gate_margin_points": gate.gate_margin(tenant_id=ctx.tenant.pk)}),
        "is_admin": ctx.has(Role.ADMIN),
    }, status=status)


@tenant_view(read=ALL_ROLES, write=(Role.ADMIN,))
@require_POST
def policy_edit(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = PolicyForm(request.POST)
    if not form.is_valid():
        raise BadRequest("The margin is a number of points from 0 to 100.")
    services.policy_save(tenant=ctx.tenant, actor=ctx.user, gate_margin_points=form.cleaned_data["gate_margin_points"])
    messages.success(request, "Promotion policy saved.")
    return redirect("prompts:list", ctx.tenant.slug)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def prompt_detail(request: HttpRequest, ctx: TenantContext, prompt_name: str) -> HttpResponse:
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    versions = selectors.versions_of(prompt=prompt)
    return render(request, "prompts/detail.html", {
        "prompt": prompt, "versions": versions, "labels": selectors.labels_of(prompt=prompt),
        "history": selectors.label_history(prompt=prompt, limit=20), "can_write": ctx.has(*WRITERS),
        "agents": Agent.objects.for_tenant(ctx.tenant).filter(prompt=prompt).order_by("name"),
    })


def _version_page(request: HttpRequest, ctx: TenantContext, version: PromptVersion) -> HttpResponse:
    prompt = version.prompt
    labels = [label for label in selectors.labels_of(prompt=prompt) if label.version_id == version.pk]
    runs = Run.objects.for_tenant(ctx.tenant).filter(prompt_version_id=version.pk).select_related("agent").order_by("-created_at", "-id")[:10]
    return render(request, "prompts/version.html", {
        "prompt": prompt, "version": version, "labels": labels, "all_labels": selectors.labels_of(prompt=prompt),
        "versions": selectors.versions_of(prompt=prompt), "runs": runs, "can_write": ctx.has(*WRITERS), "is_admin": ctx.has(Role.ADMIN),
        "on_staging": any(label.name == "staging" for label in labels),
    })


@tenant_view(read=ALL_ROLES, write=WRITERS)
def version_detail(request: HttpRequest, ctx: TenantContext, prompt_name: str, number: str) -> HttpResponse:
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    return _version_page(request, ctx, selectors.version_get(prompt=prompt, number=number))


@tenant_view(read=ALL_ROLES, write=WRITERS)
def version_by_id(request: HttpRequest, ctx: TenantContext, version_id: str) -> HttpResponse:
    version = PromptVersion.objects.for_tenant(ctx.tenant).filter(pk=id_or_404(version_id)).select_related("prompt").first()
    if version is None:
        raise Http404("No such prompt version.")
    return _version_page(request, ctx, version)


@tenant_view(read=WRITERS, write=WRITERS)
def version_new(request: HttpRequest, ctx: TenantContext, prompt_name: str, number: str) -> HttpResponse:
    """"New version from this one": the form starts from version ``number``."""
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    base = selectors.version_get(prompt=prompt, number=number)
    form = VersionForm(request.POST or None, initial=version_initial(base))
    checked = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                version = services.version_create(tenant=ctx.tenant, actor=ctx.user, prompt=prompt, data=form.content(),
                                                  changelog=form.cleaned_data.get("changelog", ""))
                messages.success(request, f"Saved v{version.number}.")
                return redirect("prompts:version", ctx.tenant.slug, prompt.name, version.number)
            except services.VersionInvalid as exc:
                for key, message in exc.problems.items():
                    form.add_error(None if key in ("__all__", "validators") else (key if key in form.fields else None), message)
        status = 400
    return render(request, "prompts/version_new.html", {"prompt": prompt, "base": base, "form": form, "checked": checked}, status=status)


@tenant_view(read=WRITERS, write=WRITERS)
@require_POST
def version_check(request: HttpRequest, ctx: TenantContext, prompt_name: str) -> HttpResponse:
    """The editor's live checks (htmx): the problems and warnings the content would be saved with."""
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    form = VersionForm(request.POST)
    if form.is_valid():
        checked = services.version_check(tenant=ctx.tenant, data=form.content())
        problems, warnings = checked.problems, checked.warnings
    else:
        problems, warnings = {k: " ".join(str(m) for m in v) for k, v in form.errors.items()}, {}
    return render(request, "prompts/partials/checks.html", {"prompt": prompt, "problems": problems, "warnings": warnings})


@tenant_view(read=ALL_ROLES, write=WRITERS)
def version_diff(request: HttpRequest, ctx: TenantContext, prompt_name: str) -> HttpResponse:
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    versions = selectors.versions_of(prompt=prompt)
    if not versions:
        return render(request, "prompts/diff.html", {"prompt": prompt, "versions": [], "fields": []})
    by_number = {str(v.number): v for v in versions}
    a_raw, b_raw = request.GET.get("a"), request.GET.get("b")
    if (a_raw is not None and a_raw not in by_number) or (b_raw is not None and b_raw not in by_number):
        raise BadRequest("a and b must be version numbers of this prompt.")
    b = by_number[b_raw] if b_raw else versions[0]
    a = by_number[a_raw] if a_raw else (versions[1] if len(versions) > 1 else versions[0])
    view = "unified" if request.GET.get("view") == "unified" else "split"
    return render(request, "prompts/diff.html", {"prompt": prompt, "versions": versions, "a": a, "b": b, "view": view,
                                                 "fields": selectors.version_diff(a=a, b=b)})


@tenant_view(read=ALL_ROLES, write=WRITERS)
def label_detail(request: HttpRequest, ctx: TenantContext, prompt_name: str, label: str) -> HttpResponse:
    """A label's history (GET); move it (POST: version, reason, override)."""
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    found = selectors.label_get(prompt=prompt, name=label)
    status, refused = 200, None
    form = LabelMoveForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            raise BadRequest("Send the version number to move the label to.")
        version = PromptVersion.objects.for_tenant(ctx.tenant).filter(prompt=prompt, number=form.cleaned_data["version"]).first()
        if version is None:
            raise BadRequest("No such version of this prompt.")
        try:
            services.label_move(tenant=ctx.tenant, actor=ctx.user, membership=ctx.membership, prompt=prompt, label_name=found.name,
                                version=version, reason=form.cleaned_data["reason"], override=form.cleaned_data["override"])
            messages.success(request, f"{found.name} now points at v{version.number}.")
            return redirect("prompts:label", ctx.tenant.slug, prompt.name, found.name)
        except gate.OverrideForbidden as exc:
            raise PermissionDenied(str(exc))
        except services.PromotionBlocked as exc:
            status, refused = 409, exc.decision
        except ValidationError as exc:
            status, refused = 400, gate.GateDecision(False, "invalid", _errors(exc))
        found = selectors.label_get(prompt=prompt, name=label)
    return render(request, "prompts/label.html", {
        "prompt": prompt, "label": found, "history": selectors.label_history(prompt=prompt, label=found),
        "versions": selectors.versions_of(prompt=prompt), "refused": refused, "form": form, "rollback_form": RollbackForm(),
        "can_write": ctx.has(*WRITERS), "is_admin": ctx.has(Role.ADMIN), "gated": found.name == PRODUCTION,
    }, status=status)


@tenant_view(read=ALL_ROLES, write=WRITERS)
@require_POST
def label_rollback(request: HttpRequest, ctx: TenantContext, prompt_name: str, label: str) -> HttpResponse:
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    found = selectors.label_get(prompt=prompt, name=label)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        raise BadRequest("A rollback needs a reason.")
    try:
        move = services.label_rollback(tenant=ctx.tenant, actor=ctx.user, membership=ctx.membership, label=found, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        raise BadRequest(_errors(exc))
    messages.success(request, f"Rolled {found.name} back to v{move.to_version.number}.")
    return redirect("prompts:label", ctx.tenant.slug, prompt.name, found.name)


@tenant_view(read=ALL_ROLES, write=WRITERS)
def version_try(request: HttpRequest, ctx: TenantContext, prompt_name: str, number: str) -> HttpResponse:
    """The try-it panel: start a playground run of this version beside production's, and show both."""
    prompt = selectors.prompt_get(tenant=ctx.tenant, name=prompt_name)
    version = selectors.version_get(prompt=prompt, number=number)
    following = list(Agent.objects.for_tenant(ctx.tenant).filter(prompt=prompt).order_by("name"))
    agents = following + [a for a in Agent.objects.for_tenant(ctx.tenant).order_by("name") if a not in following]
    form = TryForm(request.POST or None, agents=agents, scenarios=scenario_choices())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            agent = next(a for a in agents if a.pk == form.cleaned_data["agent"])
            try:
                playground.playground_start(tenant=ctx.tenant, membership=ctx.membership, version=version, agent=agent,
                                            input=form.cleaned_data["input"], scenario=form.cleaned_data.get("scenario") or "")
                return redirect(reverse("prompts:try", args=[ctx.tenant.slug, prompt.name, version.number]))
            except (ValidationError, RunRefused) as exc:
                form.add_error(None, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        status = 400
    pairs = playground.recent_pairs(version=version)
    context: dict[str, Any] = {"prompt": prompt, "version": version, "form": form, "pairs": pairs, "can_write": ctx.has(*WRITERS),
                               "live": any(not p.candidate.is_terminal or (p.production and not p.production.is_terminal) for p in pairs),
                               "production": selectors.version_by_label(prompt=prompt, label=PRODUCTION)}
    if request.headers.get("HX-Request"):
        return render(request, "prompts/partials/try_results.html", context)
    return render(request, "prompts/try.html", context, status=status)
