"""Enqueueing background jobs, with an in-process fallback when Redis does not answer.

Jobs are always enqueued after the surrounding transaction commits (a worker must never look
for a row that is not visible yet). Without Redis — a laptop demo — the job runs in a daemon
thread in this process instead, and :func:`redis_available` lets callers say so.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import django_rq
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections, transaction
from rq import Retry

log = logging.getLogger(__name__)
_redis_ok: bool | None = None

# What a database outage looks like from Django: the server is down or restarting
# (OperationalError) or our connection died under us (InterfaceError: "connection already closed").
DB_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)
# Seconds between attempts of a job that met a database outage (the last value repeats).
DB_RETRY_BACKOFF = (1, 2, 4, 8)


def db_retry_delay(attempt: int) -> int:
    return DB_RETRY_BACKOFF[min(attempt, len(DB_RETRY_BACKOFF) - 1)]


def drop_db_connections() -> None:
    """Close every connection of this thread, broken or not, so the next query reconnects."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except DB_UNAVAILABLE:
            pass


def retry_after_db_outage(func: Callable[..., Any], *args: Any, attempt: int, queue: str = "default",
                          timeout: int | None = None, **kwargs: Any) -> None:
    """Schedule ``func(*args, **kwargs)`` again after a database outage, straight into Redis.

    Not through :func:`enqueue_in`: ``transaction.on_commit`` asks the database for its
    autocommit state, and the database is exactly what is gone. If Redis is gone too, the job
    is dropped and the reconciler (which reads the runs table once the database is back) finds
    the run queued or its lease expired and enqueues it again.
    """

    delay = db_retry_delay(attempt)
    try:
        django_rq.get_queue(queue).enqueue_in(timedelta(seconds=delay), func, *args, job_timeout=timeout, **kwargs)
    except (redis.RedisError, OSError):
        log.warning("could not schedule %s after a database outage; the reconciler will", getattr(func, "__name__", func))


def survives_db_outage(func: Callable[..., Any]) -> Callable[..., Any]:
    """For idempotent jobs: a database outage retries the job (same arguments) instead of failing it.

    RQ re-runs a job that returns a ``Retry``; ``max`` is large because an outage may last any
    length of time and the job is safe to repeat. The worker's scheduler brings it back.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DB_UNAVAILABLE as exc:
            log.warning("%s met a database outage (%s); retrying", func.__name__, exc.__class__.__name__)
            drop_db_connections()
            return Retry(max=100_000, interval=DB_RETRY_BACKOFF[-1])

    return wrapper


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
            # Production: the row is committed; the reconciler enqueues it once Redis answers.
            log.warning("Redis unavailable: %s not enqueued; the reconciler will", getattr(func, "__name__", func))
            return
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
    def send() -> None:
        if not redis_available():
            if not settings.RQ_EAGER_FALLBACK:
                log.warning("Redis unavailable: %s not scheduled; the reconciler will", getattr(func, "__name__", func))
                return
            timer = threading.Timer(delay_s, _run_in_thread, args=(func, args, kwargs))
            timer.daemon = True
            timer.start()
            return
        try:
            django_rq.get_queue(queue).enqueue_in(timedelta(seconds=delay_s), func, *args, job_timeout=timeout, **kwargs)
        except (redis.RedisError, OSError):
            log.warning("scheduling failed for %s; the reconciler will retry", getattr(func, "__name__", func))

    transaction.on_commit(send)
