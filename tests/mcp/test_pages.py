"""The console pages: register a real server, see its tools, set a side effect, refresh, disable."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agentops.mcp.models import McpServer, McpTool, StdioCommand
from agentops.tools import registry
from tenants.models import Role
from tests.factories import UserFactory
from tests.mcp.conftest import ServerProcess

pytestmark = pytest.mark.django_db


def test_admin_registers_a_server_and_manages_its_tools(
    tenant, members, client_for, mcp_server: ServerProcess
):
    admin = client_for(members[Role.ADMIN])
    listing = reverse("runs:mcp_servers", kwargs={"slug": tenant.slug})
    resp = admin.post(
        listing,
        {
            "name": "orders",
            "transport": "http",
            "url": mcp_server.url,
            "auth_header": "Bearer hunter2-secret",
        },
    )
    server = McpServer.objects.for_tenant(tenant).get(name="orders")
    assert resp.status_code == 302 and resp["Location"].endswith(f"/mcp/{server.pk}/")
    page = admin.get(resp["Location"])
    html = page.content.decode()
    assert page.status_code == 200 and "mcp__orders__cancel_order" in html and "set (never shown)" in html
    assert "hunter2" not in html and "hunter2" not in admin.get(listing).content.decode()
    cancel = McpTool.objects.for_tenant(tenant).get(remote_name="cancel_order")
    update = reverse(
        "runs:mcp_tool_update", kwargs={"slug": tenant.slug, "server_id": server.pk, "tool_id": cancel.pk}
    )
    assert admin.post(update, {"side_effect": "irreversible", "enabled": "on"}).status_code == 302
    assert registry.get_tool(cancel.name, tenant).side_effect == "irreversible"
    assert admin.post(update, {"side_effect": "explosive"}).status_code == 302  # refused, nothing changed
    assert registry.get_tool(cancel.name, tenant).side_effect == "irreversible"
    refresh = reverse("runs:mcp_server_refresh", kwargs={"slug": tenant.slug, "server_id": server.pk})
    assert "2 unchanged" in admin.post(refresh, follow=True).content.decode()
    enable = reverse("runs:mcp_server_enable", kwargs={"slug": tenant.slug, "server_id": server.pk})
    admin.post(enable, {"enabled": "0"})
    assert registry.get_tool(cancel.name, tenant) is None
    admin.post(enable, {"enabled": "1"})
    assert registry.get_tool(cancel.name, tenant) is not None
    # The tool now shows up in the grant form's choices.
    grants = admin.get(reverse("runs:grants", kwargs={"slug": tenant.slug})).content.decode()
    assert "mcp__orders__cancel_order" in grants


def test_a_refused_url_re_renders_the_form_with_a_400(tenant, members, client_for):
    admin = client_for(members[Role.ADMIN])
    resp = admin.post(
        reverse("runs:mcp_servers", kwargs={"slug": tenant.slug}),
        {"name": "meta", "transport": "http", "url": "http://169.254.169.254/"},
    )
    assert resp.status_code == 400 and "URL refused" in resp.content.decode()
    assert not McpServer.objects.for_tenant(tenant).exists()


def test_a_server_that_is_down_registers_with_the_failure_shown(tenant, members, client_for, mcp_loopback):
    admin = client_for(members[Role.ADMIN])
    resp = admin.post(
        reverse("runs:mcp_servers", kwargs={"slug": tenant.slug}),
        {"name": "down", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
        follow=True,
    )
    html = resp.content.decode()
    assert resp.status_code == 200 and "listing its tools failed" in html and "unreachable" in html
    assert McpServer.objects.for_tenant(tenant).get(name="down").refresh_status == "failed"


def test_staff_console_lists_the_stdio_allow_list_and_tenants_pick_only_from_it(
    client_for, stdio_command, tenant, members
):
    staff_user = UserFactory(username="platform", is_staff=True)
    StdioCommand.objects.create(key="withdrawn", label="Old", command="/usr/bin/old-server", enabled=False)
    html = client_for(staff_user).get("/staff/").content.decode()
    assert 'id="staff-mcp-commands"' in html and "demo-orders" in html and "withdrawn" in html
    form = (
        client_for(members[Role.ADMIN])
        .get(reverse("runs:mcp_servers", kwargs={"slug": tenant.slug}))
        .content.decode()
    )
    assert 'value="demo-orders"' in form and 'value="withdrawn"' not in form
