"""Console views for the tenant shell: switcher, home, members and invitations, API keys, webhooks,
audit log, and the public page where an invitation is accepted."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agentops.keyset import BadCursor, keyset_page
from tenants import selectors, services
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.forms import (
    ApiKeyCreateForm,
    InvitationForm,
    InvitationSignupForm,
    RoleChangeForm,
    TimeZoneForm,
    WebhookEndpointForm,
)
from tenants.home import home_panels
from tenants.models import ALL_ROLES, ApiKey, Invitation, Membership, Role, WebhookEndpoint
from tenants.selectors import InvitationInvalid


@login_required
def index(request: HttpRequest) -> HttpResponse:
    memberships = list(selectors.tenants_for_user(request.user))
    # The topbar switcher submits ?t=<slug> when JavaScript is off.
    wanted = request.GET.get("t", "")
    if wanted and any(m.tenant.slug == wanted for m in memberships):
        return redirect("home", slug=wanted)
    if len(memberships) == 1:
        return redirect("home", slug=memberships[0].tenant.slug)
    if not memberships and request.user.is_staff:  # platform staff: the staff console, not an empty list
        return redirect("staff_home")
    return render(request, "tenants/index.html", {"memberships": memberships})


@tenant_view(read=ALL_ROLES)
def home(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    recent = selectors.audit_for_tenant(ctx.tenant)[:5] if ctx.role == Role.ADMIN else []
    return render(request, "tenants/home.html", {"ctx": ctx, "panels": home_panels(ctx), "recent": recent})



def _members_page(request: HttpRequest, ctx: TenantContext, form: InvitationForm, status: int = 200) -> HttpResponse:
    members = list(selectors.members_for_tenant(ctx.tenant))
    admins = sum(1 for m in members if m.role == Role.ADMIN)
    return render(
        request, "tenants/members.html",
        {"ctx": ctx, "form": form, "members": members, "roles": Role.choices, "admin_count": admins,
         "invitations": selectors.invitations_open_for_tenant(ctx.tenant), "now": timezone.now(),
         "invitation_days": settings.INVITATION_MAX_AGE_DAYS},
        status=status,
    )


def _send_invitation(request: HttpRequest, invitation: Invitation, token: str) -> None:
    url = request.build_absolute_uri(reverse("invitation_open", args=[token]))
    if services.invitation_send(invitation=invitation, accept_url=url):
        messages.success(request, f"Invitation sent to {invitation.email}.")
    else:
        messages.error(request, f"The invitation to {invitation.email} could not be e-mailed. Try Resend later.")


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def members(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Members, open invitations, and (POST) a new invitation.

    The answer to an invitation depends only on the form: never on whether the address belongs
    to an account or a member anywhere, so the page cannot be used to probe other tenants' users.
    """
    if request.method != "POST":
        return _members_page(request, ctx, InvitationForm())
    # Only the form's own fields are read: a body that also sets tenant, is_staff or user ids changes nothing.
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation, token = services.invitation_create(
                tenant=ctx.tenant, actor_membership=ctx.membership,
                email=form.cleaned_data["email"], role=form.cleaned_data["role"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            _send_invitation(request, invitation, token)
            return redirect("members", slug=ctx.tenant.slug)
    return _members_page(request, ctx, form, status=400)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def invitation_resend(request: HttpRequest, ctx: TenantContext, invitation_id: str) -> HttpResponse:
    ident = id_or_404(invitation_id)
    try:
        invitation, token = services.invitation_resend(tenant=ctx.tenant, actor=request.user, invitation_id=ident)
    except Invitation.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        _send_invitation(request, invitation, token)
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def invitation_revoke(request: HttpRequest, ctx: TenantContext, invitation_id: str) -> HttpResponse:
    ident = id_or_404(invitation_id)
    try:
        invitation = services.invitation_revoke(tenant=ctx.tenant, actor=request.user, invitation_id=ident)
    except Invitation.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Invitation to {invitation.email} revoked; its link no longer works.")
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def member_role(request: HttpRequest, ctx: TenantContext, member_id: str) -> HttpResponse:
    ident = id_or_404(member_id)
    form = RoleChangeForm(request.POST)
    if not form.is_valid():
        raise BadRequest("Unknown role.")
    try:
        membership = services.membership_change_role(
            tenant=ctx.tenant, actor_membership=ctx.membership, membership_id=ident, role=form.cleaned_data["role"]
        )
    except Membership.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("members", slug=ctx.tenant.slug)
    messages.success(request, f"{membership.user.username} is now {membership.get_role_display().lower()}.")
    if membership.pk == ctx.membership.pk and membership.role != Role.ADMIN:
        return redirect("home", slug=ctx.tenant.slug)  # the actor just gave up the members page
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def member_remove(request: HttpRequest, ctx: TenantContext, member_id: str) -> HttpResponse:
    ident = id_or_404(member_id)
    try:
        services.membership_remove(tenant=ctx.tenant, actor_membership=ctx.membership, membership_id=ident)
    except Membership.DoesNotExist:
        raise Http404
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("members", slug=ctx.tenant.slug)
    if ident == ctx.membership.pk:
        messages.success(request, f"You left {ctx.tenant.name}.")
        return redirect("index")
    messages.success(request, "Member removed.")
    return redirect("members", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def api_keys(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
    new_key = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                _, new_key = services.api_key_create(
                    tenant=ctx.tenant, actor=request.user, name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"], acts_as_role=form.cleaned_data["acts_as_role"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                # Rendered, not redirected: the raw key lives only in this one response.
                form, status = ApiKeyCreateForm(), 200
    response = render(
        request, "tenants/api_keys.html",
        {"ctx": ctx, "form": form, "keys": selectors.api_keys_for_tenant(ctx.tenant), "new_key": new_key},
        status=status,
    )
    if new_key:
        add_never_cache_headers(response)  # the key must not linger in any cache
    return response


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def api_key_revoke(request: HttpRequest, ctx: TenantContext, key_id: str) -> HttpResponse:
    ident = id_or_404(key_id)
    try:
        key = services.api_key_revoke(tenant=ctx.tenant, actor=request.user, key_id=ident)
    except ApiKey.DoesNotExist:
        raise Http404
    messages.success(request, f"Key {key.name} (aok_{key.prefix}_…) revoked.")
    return redirect("api_keys", slug=ctx.tenant.slug)


def _webhooks_page(
    request: HttpRequest, ctx: TenantContext, form: WebhookEndpointForm, *,
    new_secret: str | None = None, secret_for: WebhookEndpoint | None = None, status: int = 200,
) -> HttpResponse:
    response = render(
        request, "tenants/webhooks.html",
        {
            "ctx": ctx, "form": form, "endpoints": selectors.webhook_endpoints_for_tenant(ctx.tenant),
            "deliveries": selectors.webhook_deliveries_recent(ctx.tenant), "new_secret": new_secret,
            "secret_for": secret_for, "max_endpoints": WebhookEndpoint.MAX_PER_TENANT,
        },
        status=status,
    )
    if new_secret:
        add_never_cache_headers(response)  # the secret must not linger in any cache
    return response


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
def webhooks(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    if request.method != "POST":
        return _webhooks_page(request, ctx, WebhookEndpointForm())
    form = WebhookEndpointForm(request.POST)
    if form.is_valid():
        try:
            endpoint, secret = services.webhook_endpoint_create(tenant=ctx.tenant, actor=request.user, url=form.cleaned_data["url"])
        except ValidationError as exc:
            form.add_error("url", exc)
        else:
            # Rendered, not redirected: the secret lives only in this one response.
            return _webhooks_page(request, ctx, WebhookEndpointForm(), new_secret=secret, secret_for=endpoint)
    return _webhooks_page(request, ctx, form, status=400)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def webhook_rotate(request: HttpRequest, ctx: TenantContext, endpoint_id: str) -> HttpResponse:
    ident = id_or_404(endpoint_id)
    try:
        endpoint, secret = services.webhook_endpoint_rotate(tenant=ctx.tenant, actor=request.user, endpoint_id=ident)
    except WebhookEndpoint.DoesNotExist:
        raise Http404
    return _webhooks_page(request, ctx, WebhookEndpointForm(), new_secret=secret, secret_for=endpoint)


@tenant_view(read=(Role.ADMIN,), write=(Role.ADMIN,))
@require_POST
def webhook_delete(request: HttpRequest, ctx: TenantContext, endpoint_id: str) -> HttpResponse:
    ident = id_or_404(endpoint_id)
    try:
        endpoint = services.webhook_endpoint_delete(tenant=ctx.tenant, actor=request.user, endpoint_id=ident)
    except WebhookEndpoint.DoesNotExist:
        raise Http404
    messages.success(request, f"Webhook endpoint {endpoint.host} deleted.")
    return redirect("webhooks", slug=ctx.tenant.slug)


@tenant_view(read=(Role.ADMIN,), write=())
def audit_log(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    action = request.GET.get("action", "")[:64]
    try:
        page = keyset_page(selectors.audit_for_tenant(ctx.tenant, action=action), field="at", after=request.GET.get("after", ""), size=50)
    except BadCursor as exc:
        raise BadRequest(str(exc)) from exc
    for event in page.items:
        event.changes = selectors.audit_changes(event)
    return render(
        request, "tenants/audit.html",
        {"ctx": ctx, "page": page, "action": action, "actions": selectors.audit_actions(ctx.tenant)},
    )


@tenant_view(read=ALL_ROLES, write=ALL_ROLES)
def profile(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """The person's own settings (their time zone) and, for an admin, the tenant's default zone."""
    tenant_default = f"The tenant's: {ctx.tenant.time_zone}"
    mine = TimeZoneForm(initial={"time_zone": getattr(request, "own_time_zone", "")}, blank_label=tenant_default, prefix="me")
    tenants = TimeZoneForm(initial={"time_zone": ctx.tenant.time_zone}, prefix="tenant")
    status = 200
    if request.method == "POST":
        which = request.POST.get("which", "")
        if which == "tenant" and ctx.role != Role.ADMIN:
            raise PermissionDenied("Only an admin sets the tenant's time zone.")
        form = TimeZoneForm(request.POST, blank_label=tenant_default if which == "me" else "", prefix=which if which in ("me", "tenant") else "me")
        if which not in ("me", "tenant"):
            raise BadRequest("Send which=me or which=tenant.")
        if form.is_valid():
            zone = form.cleaned_data["time_zone"]
            if which == "me":
                services.profile_time_zone_set(user=request.user, time_zone=zone)
                messages.success(request, f"Times are now shown in {zone or ctx.tenant.time_zone}.")
            else:
                services.tenant_time_zone_set(tenant=ctx.tenant, actor=request.user, time_zone=zone)
                messages.success(request, f"{ctx.tenant.name}'s time zone is now {zone}.")
            return redirect("profile", slug=ctx.tenant.slug)
        status = 400
        mine, tenants = (form, tenants) if which == "me" else (mine, form)
    return render(request, "tenants/profile.html", {
        "ctx": ctx, "mine": mine, "tenant_form": tenants if ctx.role == Role.ADMIN else None,
        "now": timezone.now(),
    }, status=status)


# --- Accepting an invitation (public: outside /t/, the link is the credential) --------------

INVITATION_SESSION_KEY = "invitation_token"

_INVALID = {
    "unknown": (404, "This invitation link is not valid", "Check that you opened the whole link from the e-mail."),
    "expired": (410, "This invitation has expired", "Ask an admin of the tenant to send you a new one."),
    "used": (410, "This invitation was already accepted", "Each link works once. Log in to reach the tenant."),
    "revoked": (410, "This invitation was withdrawn", "Ask an admin of the tenant if you still need access."),
    "missing": (404, "No invitation to accept", "Open the link in your invitation e-mail again."),
}


def _invitation_invalid(request: HttpRequest, reason: str) -> HttpResponse:
    status, title, hint = _INVALID[reason]
    return render(request, "tenants/invitation_invalid.html", {"title": title, "hint": hint}, status=status)


@never_cache
@require_GET
def invitation_open(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the e-mail. The token moves into the session and the browser continues at a
    URL without it (Django's password-reset pattern), so it lingers in no log line, history entry
    or Referer header, and survives the detour through the login page."""
    try:
        selectors.invitation_from_token(token)
    except InvitationInvalid as exc:
        return _invitation_invalid(request, exc.reason)
    request.session[INVITATION_SESSION_KEY] = token
    return redirect("invitation_accept")


def _joined(request: HttpRequest, membership: Membership, created: bool) -> HttpResponse:
    request.session.pop(INVITATION_SESSION_KEY, None)
    tenant = membership.tenant
    if created:
        messages.success(request, f"Welcome to {tenant.name}. You joined as {membership.get_role_display().lower()}.")
    else:
        messages.info(request, f"You were already a member of {tenant.name}; your role is unchanged.")
    return redirect("home", slug=tenant.slug)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """Signed in: one button accepts. Anonymous: log in first (and come back), or set a password for
    a new account named after the invited address, which is created, joined and signed in at once."""
    token = request.session.get(INVITATION_SESSION_KEY)
    if not token:
        return _invitation_invalid(request, "missing")
    try:
        invitation = selectors.invitation_from_token(token)
    except InvitationInvalid as exc:
        return _invitation_invalid(request, exc.reason)
    signup = None
    status = 200
    try:
        if request.user.is_authenticated:
            if request.method == "POST":
                membership, created = services.invitation_accept(raw_token=token, user=request.user)
                return _joined(request, membership, created)
        else:
            signup = InvitationSignupForm(invitation.email, request.POST if request.method == "POST" else None)
            if signup.is_valid():
                try:
                    user, membership = services.invitation_accept_new_user(raw_token=token, password=signup.cleaned_data["password1"])
                except ValidationError as exc:
                    signup.add_error(None, exc)
                else:
                    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                    return _joined(request, membership, True)
            if request.method == "POST":
                status = 400
    except InvitationInvalid as exc:  # used, revoked or expired since the page was shown
        return _invitation_invalid(request, exc.reason)
    return render(
        request, "tenants/invitation_accept.html",
        {"invitation": invitation, "role": Role(invitation.role).label, "signup": signup,
         "login_url": f"{reverse('login')}?next={reverse('invitation_accept')}"},
        status=status,
    )
