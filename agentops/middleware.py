"""Request guards that run before any view: bad input gets a clear 4xx, never a 500."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from agentops.logs import log_context

# A "\u0000" escape in JSON text: preceded by an even number of backslashes (a "\\u0000" is the
# literal text \u0000, not a NUL). A "%00" is a NUL only where percent-encoding applies.
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _bad_request(request: HttpRequest, message: str, status: int = 400, type_: str = "invalid_request") -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": {"type": type_, "message": message}}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain")


# What a non-JSON error under /api/ becomes (Django's own 404 page, 500 page, CSRF 403 and so on).
API_ERROR_TYPES = {400: "invalid_request", 401: "authentication_error", 403: "permission_error", 404: "not_found",
                   405: "method_not_allowed", 413: "request_too_large", 415: "unsupported_media_type",
                   429: "rate_limit_error"}


class ApiJsonErrorsMiddleware:
    """Every error under ``/api/`` is ``{"error": {"type", "message"}}``: unknown paths, Django's
    405/400 answers and an unexpected 500 included (in DEBUG as well, where Django would render
    its HTML debug pages). A JSON error a view already made passes through untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not _is_api(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        type_ = API_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request")
        message = "No such API endpoint." if status == 404 else f"{response.reason_phrase}."
        replacement = JsonResponse({"error": {"type": type_, "message": message}}, status=status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                replacement[header] = response[header]
        return replacement


class RequestGuardMiddleware:
    """Refuses NUL bytes in the path, query or body, and oversized bodies (413 ``request_too_large``).

    PostgreSQL cannot store NUL in text columns; without this guard such input reaches the
    database and turns into a 500. JSON bodies are also read by ``agentops.jsoninput``, which
    refuses NUL, lone surrogates and deep nesting after decoding.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
            return _bad_request(request, "NUL bytes are not allowed in the URL.")
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            size = int(length)
        except ValueError:
            return _bad_request(request, "Invalid Content-Length.")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if size > limit:
            return _bad_request(request, f"Request body too large (limit {limit} bytes).", status=413, type_="request_too_large")
        if request.method in ("POST", "PUT", "PATCH") and size:
            body = request.body
            ctype = request.META.get("CONTENT_TYPE", "")
            # Each encoding's own spelling of NUL: "%00" when percent-encoded, "\u0000" in JSON.
            urlencoded = ctype.startswith("application/x-www-form-urlencoded")
            json_text = not ctype or "json" in ctype
            if b"\x00" in body or (urlencoded and b"%00" in body) or (json_text and _JSON_NUL.search(body)):
                return _bad_request(request, "NUL bytes are not allowed in the request body.")
        return self.get_response(request)


class LogContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = log_context.set({"path": request.path})
        try:
            return self.get_response(request)
        finally:
            log_context.reset(token)
