"""Liveness and readiness. /healthz: the process answers. /readyz: the database and Redis answer."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        import django_rq

        django_rq.get_connection("default").ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if checks.get("redis") == "ok":
        body["workers"] = _workers()
    return JsonResponse(body, status=200 if ok else 503)


def _workers() -> dict[str, object]:
    """Live RQ workers (their heartbeats are in Redis) and the depth of each queue."""
    import django_rq
    from rq import Worker

    conn = django_rq.get_connection("default")
    workers = Worker.all(connection=conn)
    return {
        "alive": len(workers),
        "busy": sum(1 for w in workers if w.get_state() == "busy"),
        "queues": {name: django_rq.get_queue(name).count for name in ("runs", "default")},
    }
