"""Console pages for a tenant's MCP tool servers (agentops.mcp): list + register, a server's page
(status, refresh, its tools with the side-effect class the admin sets). Admin only, like the tool
grants page they feed: an MCP tool is offered to a run only once a grant covers it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agentops.mcp import selectors, services
from agentops.mcp.models import McpServer, McpTool, SideEffect, Transport
from agentops.tools.errors import ToolError
from runs import console_selectors as cs
from tenants.access import TenantContext, id_or_404, tenant_view
from tenants.models import Role

ADMIN = (Role.ADMIN,)


class ServerForm(forms.Form):
    name = forms.CharField(
        max_length=24, help_text="Lower-case letters, digits, dashes. Tools are named mcp__<name>__<tool>."
    )
    transport = forms.ChoiceField(choices=Transport.choices, initial=Transport.HTTP)
    url = forms.CharField(
        required=False,
        max_length=2048,
        label="URL (streamable HTTP)",
        help_text="e.g. https://mcp.example.com/mcp — must be a public address.",
    )
    command_key = forms.ChoiceField(
        required=False, label="Command (stdio)", help_text="Only commands platform staff allow."
    )
    auth_header = forms.CharField(
        required=False,
        max_length=2000,
        label="Authorization header",
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Sent as Authorization to an HTTP server; stored, never shown again.",
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        commands = services.allowed_commands()
        self.fields["command_key"].choices = [("", "—"), *((c.key, f"{c.key} · {c.label}") for c in commands)]  # type: ignore[attr-defined]


class ToolForm(forms.Form):
    side_effect = forms.ChoiceField(choices=SideEffect.choices)
    enabled = forms.BooleanField(required=False)


def _register(request: HttpRequest, ctx: TenantContext, form: ServerForm) -> McpServer | None:
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        server = services.server_register(
            tenant=ctx.tenant,
            actor=request.user,
            name=data["name"],
            transport=data["transport"],
            url=data["url"],
            command_key=data["command_key"],
            auth_header=data["auth_header"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return None
    try:
        counts = services.server_refresh(tenant=ctx.tenant, actor=request.user, server=server)
        messages.success(
            request,
            f"Registered {server.name}: {counts['added']} tools listed, each a write until you say otherwise.",
        )
    except ToolError as exc:
        messages.warning(request, f"Registered {server.name}, but listing its tools failed: {exc.message}")
    return server


@tenant_view(read=ADMIN, write=ADMIN)
def server_list(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = ServerForm(request.POST)
        server = _register(request, ctx, form)
        if server is not None:
            return redirect("runs:mcp_server", slug=ctx.tenant.slug, server_id=server.pk)
        status = 400
    else:
        form = ServerForm()
    return render(
        request,
        "runs/mcp_servers.html",
        {
            "form": form,
            "servers": selectors.servers_for_tenant(ctx.tenant),
            "commands": services.allowed_commands(),
        },
        status=status,
    )


def _server_or_404(ctx: TenantContext, server_id: str) -> McpServer:
    server = selectors.server_for_tenant(ctx.tenant, id_or_404(server_id))
    if server is None:
        raise Http404("No such MCP server.")
    return server


@tenant_view(read=ADMIN, write=ADMIN)
def server_detail(request: HttpRequest, ctx: TenantContext, server_id: str) -> HttpResponse:
    server = _server_or_404(ctx, server_id)
    tools = list(selectors.tools_of(ctx.tenant, server))
    granted = set(
        cs.grants_for_tenant(ctx.tenant)
        .filter(tool_name__in=[t.name for t in tools])
        .values_list("tool_name", flat=True)
    )
    rows = [
        {
            "tool": t,
            "granted": t.name in granted,
            "form": ToolForm(
                initial={"side_effect": t.side_effect, "enabled": t.enabled}, auto_id=f"id_t{t.pk}_%s"
            ),
        }
        for t in tools
    ]
    return render(request, "runs/mcp_server.html", {"server": server, "rows": rows})


@tenant_view(read=ADMIN, write=ADMIN)
@require_POST
def server_refresh(request: HttpRequest, ctx: TenantContext, server_id: str) -> HttpResponse:
    server = _server_or_404(ctx, server_id)
    try:
        counts = services.server_refresh(tenant=ctx.tenant, actor=request.user, server=server)
    except ToolError as exc:
        messages.error(request, f"Refresh failed: {exc.message}")
    else:
        messages.success(
            request,
            "Refreshed: {added} new, {changed} changed, {unlisted} no longer listed, {unchanged} unchanged.".format(
                **counts
            ),
        )
    return redirect("runs:mcp_server", slug=ctx.tenant.slug, server_id=server.pk)


@tenant_view(read=ADMIN, write=ADMIN)
@require_POST
def server_enable(request: HttpRequest, ctx: TenantContext, server_id: str) -> HttpResponse:
    server = _server_or_404(ctx, server_id)
    enabled = request.POST.get("enabled") == "1"
    services.server_set_enabled(tenant=ctx.tenant, actor=request.user, server_id=server.pk, enabled=enabled)
    messages.success(
        request, f"{server.name} {'enabled' if enabled else 'disabled: its tools are offered to no run'}."
    )
    return redirect("runs:mcp_server", slug=ctx.tenant.slug, server_id=server.pk)


@tenant_view(read=ADMIN, write=ADMIN)
@require_POST
def tool_update(request: HttpRequest, ctx: TenantContext, server_id: str, tool_id: str) -> HttpResponse:
    server = _server_or_404(ctx, server_id)
    form = ToolForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose read, write or irreversible.")
        return redirect("runs:mcp_server", slug=ctx.tenant.slug, server_id=server.pk)
    tool = McpTool.objects.for_tenant(ctx.tenant).filter(server=server, pk=id_or_404(tool_id)).first()
    if tool is None:
        raise Http404("No such MCP tool.")
    services.tool_update(
        tenant=ctx.tenant,
        actor=request.user,
        tool_id=tool.pk,
        side_effect=form.cleaned_data["side_effect"],
        enabled=form.cleaned_data["enabled"],
    )
    messages.success(
        request,
        f"{tool.name}: {form.cleaned_data['side_effect']}, {'enabled' if form.cleaned_data['enabled'] else 'disabled'}.",
    )
    return redirect("runs:mcp_server", slug=ctx.tenant.slug, server_id=server.pk)
