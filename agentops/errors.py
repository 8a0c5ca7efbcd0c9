"""The console's error pages (``handler400/403/404``; 500 through :func:`agentops.outage.server_error`).

They render in the console layout: the tenant's sidebar when the signed-in user is a member of the
tenant in the URL (``/t/<slug>/…``), the top bar alone otherwise, so a non-member's 404 looks the
same as "no such tenant". Each says what happened and where to go. Views refuse bad input by raising
``django.core.exceptions.BadRequest("what was wrong")``; that message is shown. Under ``/api/`` the
answer stays JSON: :class:`agentops.middleware.ApiJsonErrorsMiddleware` replaces these pages there.
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
)
from django.template import loader

from tenants.access import TenantContext, get_membership

log = logging.getLogger(__name__)

_TENANT_PATH = re.compile(r"^/t/([^/]+)/")


def _tenant_ctx(request: HttpRequest) -> TenantContext | None:
    """The tenant context of the page that failed: set by ``tenant_view`` when the view ran, else
    looked up from the URL for a member (a 403 is raised before the view sets it)."""
    ctx = getattr(request, "tenant_ctx", None)
    if ctx is not None:
        return ctx
    user = getattr(request, "user", None)
    match = _TENANT_PATH.match(request.path)
    if user is None or match is None or not user.is_authenticated:
        return None
    try:
        membership = get_membership(user, match.group(1))
    except Http404:
        return None
    ctx = TenantContext(tenant=membership.tenant, membership=membership)
    request.tenant_ctx = ctx  # type: ignore[attr-defined]  # the nav context processor reads it
    return ctx


def render_error(request: HttpRequest, template_name: str, message: str = "") -> str:
    """The page in the console layout, or, when that cannot be rendered (the error may be the
    database itself), the same page on the bare layout without the user, the tenant or any query."""
    template = loader.get_template(template_name)
    if not request.path.startswith("/api/"):
        try:
            ctx = _tenant_ctx(request)
            return template.render({
                "layout": "tenants/layout.html" if ctx else "base.html", "message": message,
            }, request)
        except Exception:  # noqa: BLE001 - an error page must not fail; the plain one follows
            log.exception("error page %s could not render in the console layout", template_name)
    return template.render({"layout": "base.html", "message": message, "plain": True})


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Only our own BadRequest messages are shown: other SuspiciousOperations may quote the request.
    message = str(exception) if type(exception) is BadRequest else ""
    return HttpResponseBadRequest(render_error(request, "400.html", message))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if isinstance(exception, PermissionDenied) else ""
    return HttpResponseForbidden(render_error(request, "403.html", message))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Http404's text is not shown: "No Run matches the given query." says nothing to an operator.
    return HttpResponseNotFound(render_error(request, "404.html"))
