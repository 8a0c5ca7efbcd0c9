"""Console views for the tenant shell: switcher, home, members, API keys, audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tenants import selectors, services
from tenants.access import TenantContext, tenant_view
from tenants.forms import ApiKeyCreateForm, MemberAddForm, RoleChangeForm
from tenants.models import ALL_ROLES, ApiKey, Membership, Role


@login_required
def index(request: HttpRequest) -> HttpResponse:
    memberships = list(selectors.tenants_for_user(request.user))
    if len(memberships) == 1:
        return redirect("home", slug=memberships[0].tenant.slug)
    return render(request, "tenants/index.html", {"memberships": memberships})


@tenant_view(read=ALL_ROLES)
def home(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    from tenants.home import home_panels

    return render(request, "tenants/home.html", {"ctx": ctx, "panels": home_panels(ctx)})


def _int_id(value: str) -> int:
    try:
        ident = int(value)
    except (TypeError, ValueError):
        raise Http404
    if not 0 < ident < 2**63:
        raise Http404
    return ident


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def members(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = MemberAddForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.membership_add(
                    tenant=ctx.tenant, actor_membership=ctx.membership,
                    username=form.cleaned_data["username"], role=form.cleaned_data["role"],
                )
                messages.success(request, f"Added {form.cleaned_data['username']}.")
                return redirect("members", slug=ctx.tenant.slug)
            except ValidationError as exc:
                form.add_error(None, exc)
        status = 400
    return render(
        request, "tenants/members.html",
        {"ctx": ctx, "form": form, "members": selectors.members_for_tenant(ctx.tenant), "roles": Role.choices},
        status=status,
    )


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def member_role(request: HttpRequest, ctx: TenantContext, member_id: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("members", slug=ctx.tenant.slug)
    form = RoleChangeForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown role.", status=400)
    try:
        services.membership_change_role(
            tenant=ctx.tenant, actor_membership=ctx.membership, membership_id=_int_id(member_id), role=form.cleaned_data["role"]
        )
    except Membership.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("members", slug=ctx.tenant.slug)
    messages.success(request, "Role changed.")
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def member_remove(request: HttpRequest, ctx: TenantContext, member_id: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("members", slug=ctx.tenant.slug)
    try:
        services.membership_remove(tenant=ctx.tenant, actor_membership=ctx.membership, membership_id=_int_id(member_id))
    except Membership.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("members", slug=ctx.tenant.slug)
    messages.success(request, "Member removed.")
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def api_keys(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    new_key = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, new_key = services.api_key_create(
                    tenant=ctx.tenant, actor=request.user, name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"], acts_as_role=form.cleaned_data["acts_as_role"],
                )
                form = ApiKeyCreateForm()
            except ValidationError as exc:
                form.add_error(None, exc)
                status = 400
        else:
            status = 400
    return render(
        request, "tenants/api_keys.html",
        {"ctx": ctx, "form": form, "keys": selectors.api_keys_for_tenant(ctx.tenant), "new_key": new_key},
        status=status,
    )


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def api_key_revoke(request: HttpRequest, ctx: TenantContext, key_id: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("api_keys", slug=ctx.tenant.slug)
    try:
        services.api_key_revoke(tenant=ctx.tenant, actor=request.user, key_id=_int_id(key_id))
    except ApiKey.DoesNotExist:
        raise Http404
    messages.success(request, "Key revoked.")
    return redirect("api_keys", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=())
def audit_log(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "GET":
        raise PermissionDenied
    action = request.GET.get("action", "")[:64]
    page = Paginator(selectors.audit_for_tenant(ctx.tenant, action=action), 50).get_page(request.GET.get("page"))
    return render(request, "tenants/audit.html", {"ctx": ctx, "page": page, "action": action})
