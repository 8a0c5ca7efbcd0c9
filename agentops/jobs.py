"""Enqueueing background jobs, with an in-process fallback when Redis does not answer.

Jobs are always enqueued after the surrounding transaction commits (a worker must never look
for a row that is not visible yet). Without Redis — a laptop demo — the job runs in a daemon
thread in this process instead, and :func:`redis_available` lets callers say so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)
_redis_ok: bool | None = None


def redis_available(*, refresh: bool = False) -> bool:
    global _redis_ok
    if _redis_ok is None or refresh:
        try:
            django_rq.get_connection("default").ping()
            _redis_ok = True
        except (redis.RedisError, OSError):
            _redis_ok = False
    return _redis_ok


def _run_in_thread(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    def target() -> None:
        try:
            func(*args, **kwargs)
        except Exception:
            log.exception("in-process job %s failed", getattr(func, "__name__", func))
        finally:
            close_old_connections()

    threading.Thread(target=target, daemon=True).start()


def enqueue(
    func: Callable[..., Any],
    *args: Any,
    queue: str = "default",
    job_id: str | None = None,
    timeout: int | None = None,
    on_commit: bool = True,
    **kwargs: Any,
) -> None:
    """Enqueue ``func(*args, **kwargs)`` on ``queue`` once the current transaction commits."""

    def send() -> None:
        if not redis_available():
            if settings.RQ_EAGER_FALLBACK:
                _run_in_thread(func, args, kwargs)
                return
            raise RuntimeError("Redis is not available and RQ_EAGER_FALLBACK is off")
        q = django_rq.get_queue(queue)
        try:
            q.enqueue(func, *args, job_id=job_id, job_timeout=timeout, **kwargs)
        except (redis.RedisError, OSError):
            # The reconciler re-enqueues anything queued without a job; log and move on.
            log.warning("enqueue failed for %s; the reconciler will retry", getattr(func, "__name__", func))

    if on_commit:
        transaction.on_commit(send)
    else:
        send()


def enqueue_in(delay_s: float, func: Callable[..., Any], *args: Any, queue: str = "default", timeout: int | None = None, **kwargs: Any) -> None:
    """Schedule ``func`` after ``delay_s`` seconds (RQ's scheduler runs it; workers start with --with-scheduler)."""
    from datetime import timedelta

    def send() -> None:
        if not redis_available():
            timer = threading.Timer(delay_s, _run_in_thread, args=(func, args, kwargs))
            timer.daemon = True
            timer.start()
            return
        try:
            django_rq.get_queue(queue).enqueue_in(timedelta(seconds=delay_s), func, *args, job_timeout=timeout, **kwargs)
        except (redis.RedisError, OSError):
            log.warning("scheduling failed for %s; the reconciler will retry", getattr(func, "__name__", func))

    transaction.on_commit(send)
