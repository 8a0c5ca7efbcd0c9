"""Navigation for the tenant layout: an area appears only once its URL exists and the role may read it."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from tenants.selectors import tenants_for_user

# (label, url name, roles that see it). Entries whose URL is not registered are skipped.
NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("Home", "home", ()),
    ("Runs", "runs:list", ()),
    ("Prompts", "prompts:list", ()),
    ("Evals", "evals:overview", ()),
    ("Agents", "runs:agents", ("admin", "prompt_editor")),
    ("Tool grants", "runs:grants", ("admin",)),
    ("MCP servers", "runs:mcp_servers", ("admin",)),
    ("Escalations", "escalations:inbox", ("admin", "operator")),
    ("Memory", "memory:list", ()),
    ("Spend", "budgets:spend", ("admin", "finance")),
    ("Caps", "budgets:caps", ("admin",)),
    ("Members", "members", ("admin",)),
    ("API keys", "api_keys", ("admin",)),
    ("Webhooks", "webhooks", ("admin",)),
    ("Audit log", "audit_log", ("admin",)),
]


def tenant_nav(request: HttpRequest) -> dict[str, Any]:
    ctx = getattr(request, "tenant_ctx", None)
    if ctx is None:
        return {}
    items: list[dict[str, Any]] = []
    for label, name, roles in NAV:
        if roles and ctx.role not in roles:
            continue
        try:
            url = reverse(name, kwargs={"slug": ctx.tenant.slug})
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": False})
    # The one item whose URL is the longest prefix of the path is active (Caps, not also Spend, on spend/caps/).
    home = reverse("home", kwargs={"slug": ctx.tenant.slug})
    matches = [i for i in items if request.path == i["url"] or (i["url"] != home and request.path.startswith(i["url"]))]
    if matches:
        max(matches, key=lambda i: len(i["url"]))["active"] = True

    return {"nav_items": items, "tenant_ctx": ctx, "switcher": tenants_for_user(request.user)}
