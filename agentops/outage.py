"""A database or Redis outage answers 503 with ``Retry-After``, never Django's HTML 500.

Two hooks, because Django converts an exception into a response at every middleware layer:

* :class:`OutageMiddleware` (``process_exception``) turns an outage raised by a view into a 503
  before Django logs it as a server error;
* :func:`server_error` is the project's ``handler500``: Django calls it, inside the ``except``
  block, for an exception raised anywhere else (the session middleware saving a session, the auth
  middleware loading a user, a lazy query in a template), so those become 503s too.

The API gets the JSON error shape; the console gets ``templates/503.html``, rendered without the
request (no context processors, so nothing touches the database while it is down).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from agentops.errors import render_error

log = logging.getLogger(__name__)

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
)


def outage_cause(exc: BaseException | None) -> BaseException | None:
    """The database or Redis error behind ``exc`` (itself, or one it was raised from), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OUTAGE_ERRORS):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def outage_response(request: HttpRequest) -> HttpResponse:
    retry_after = str(settings.SERVICE_UNAVAILABLE_RETRY_AFTER)
    response: HttpResponse
    if _is_api(request):
        response = JsonResponse(
            {"error": {"type": "service_unavailable",
                       "message": f"The service is temporarily unavailable. Retry in {retry_after} s."}},
            status=503,
        )
    else:
        html = loader.get_template("503.html").render({"retry_after": retry_after})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = retry_after
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        cause = outage_cause(exception)
        if cause is None:
            return None
        log.warning("service unavailable: %s: %s", cause.__class__.__name__, str(cause).splitlines()[0][:200] if str(cause) else "")
        return outage_response(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: an outage anywhere in the stack is a 503; anything else a 500 of the right shape."""
    if outage_cause(sys.exc_info()[1]) is not None:
        return outage_response(request)
    if _is_api(request):
        return JsonResponse({"error": {"type": "api_error", "message": "Internal server error."}}, status=500)
    return HttpResponse(render_error(request, "500.html"), status=500)
