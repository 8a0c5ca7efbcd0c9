"""Liveness and readiness. /healthz: the process answers. /readyz: the database and Redis answer.

/readyz is public as a status only (``ok`` / ``unavailable`` per dependency), for load balancers.
The details — which error, live workers, queue depths and when each periodic job last ran —
are for staff users and for a monitor sending ``Authorization: Bearer <READYZ_TOKEN>``.
"""

from __future__ import annotations

import hmac
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from rq import Worker

from agentops.periodic import last_runs


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _may_see_details(request: HttpRequest) -> bool:
    token = settings.READYZ_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
    try:  # the session lives in the database, which may be the thing that is down
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and user.is_staff)
    except Exception:
        return False


def readyz(request: HttpRequest) -> JsonResponse:
    errors: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except Exception as exc:
        errors["database"] = exc.__class__.__name__
    try:
        django_rq.get_connection("default").ping()
    except Exception as exc:
        errors["redis"] = exc.__class__.__name__
    ok = not errors
    checks = {name: "unavailable" if name in errors else "ok" for name in ("database", "redis")}
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if _may_see_details(request):
        body["errors"] = errors
        if "redis" not in errors:
            body["workers"] = _workers()

            body["periodic"] = last_runs()
    return JsonResponse(body, status=200 if ok else 503)


def _workers() -> dict[str, object]:
    """Live RQ workers (their heartbeats are in Redis) and the depth of each queue."""
    conn = django_rq.get_connection("default")
    workers = Worker.all(connection=conn)
    return {
        "alive": len(workers),
        "busy": sum(1 for w in workers if w.get_state() == "busy"),
        "queues": {name: django_rq.get_queue(name).count for name in ("runs", "default")},
    }
