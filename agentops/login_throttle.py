"""Login throttling with django-axes: by account and by address, lockouts kept in the database.

Every login over HTTP (the console's ``/login/`` and the Django admin's) passes the request to
``authenticate()``, and django-axes counts its failures per username and per client address
(``AXES_LOCKOUT_PARAMETERS``); at ``LOGIN_FAILURE_LIMIT`` failures the username, or the address,
is refused for ``LOGIN_COOLOFF_MINUTES`` — with the right password too — and staff see the
attempts and lockouts in the Django admin (Axes → access attempts), where they can also lift one.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for logins that come with a request.

    ``authenticate()`` without a request happens only in-process (the test client's ``login()``,
    a shell), never on a path a client can reach, so there is nothing to count and it passes on
    to the next backend instead of raising, as stock django-axes does.
    """

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address to throttle: the peer, or behind the TLS proxy the address that proxy saw.

    Behind a proxy every request comes from the proxy itself, so counting ``REMOTE_ADDR`` would
    lock every user out together. The proxy appends the address it saw as the last
    ``X-Forwarded-For`` entry; anything before it is what the client claimed and is not trusted.
    """
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR")


def client_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The username tried, cut to the 255 characters django-axes stores (a 10 kB one must not 500)."""
    source = credentials if credentials else getattr(request, "POST", {})
    username = source.get("username") if source else None
    return str(username)[:255] if username is not None else None
