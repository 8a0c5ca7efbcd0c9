"""Live deltas of a run's model calls: written by the worker as the stream arrives, read by SSE.

One Redis stream per run (``agentops:run:<id>:deltas``, capped and expiring): each entry is one
piece of a streamed answer (:data:`agentops.llm.gateway.DeltaSink` shapes) tagged with the ``seq``
the turn will have once persisted. They are a preview only: the durable log is written once per
turn from the final message, and a reader drops the deltas of a turn it has already sent as a
``turn`` event. A ``start`` entry opens every attempt (a retried or fallen-back call starts its
text again). When Redis does not answer, deltas are dropped; the run itself is not affected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

log = logging.getLogger(__name__)

MAXLEN = 5000  # entries kept per run (approximate trim)
TTL_S = 3600  # a stream outlives its last write by an hour
ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")

_sync: redis.Redis | None = None
_async: dict[int, aioredis.Redis] = {}


def key(run_id: int) -> str:
    return f"agentops:run:{run_id}:deltas"


def _client() -> redis.Redis:
    global _sync
    if _sync is None:
        _sync = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
    return _sync


class DeltaRelay:
    """The ``on_delta`` sink of one model call: XADDs each delta to the run's stream.

    Never raises: a Redis failure stops relaying for the rest of this call (logged once).
    """

    def __init__(self, run_id: int, seq: int) -> None:
        self.key = key(run_id)
        self.seq = seq
        self.sent = 0
        self._down = False

    def __call__(self, delta: dict[str, Any]) -> None:
        if self._down:
            return
        try:
            fields = {"d": json.dumps({**delta, "seq": self.seq})}
            if self.sent == 0:  # the first delta sets the stream's expiry in the same round trip
                pipe = _client().pipeline(transaction=False)
                pipe.xadd(self.key, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
                pipe.expire(self.key, TTL_S)
                pipe.execute()
            else:
                _client().xadd(self.key, fields, maxlen=MAXLEN, approximate=True)  # type: ignore[arg-type]
            self.sent += 1
        except (redis.RedisError, OSError) as exc:
            self._down = True
            log.warning("live deltas not relayed (%s); the run continues", type(exc).__name__)


def _decode(entries: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for entry_id, fields in entries or []:
        raw = fields.get(b"d") or fields.get("d")
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            continue
        out.append((entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), data))
    return out


def read(run_id: int, after: str) -> list[tuple[str, dict[str, Any]]]:
    """The deltas after stream id ``after`` ("0" for all), oldest first; [] when Redis is down."""
    try:
        return _decode(_client().xrange(key(run_id), min=f"({after}" if after != "0" else "-", count=1000))
    except (redis.RedisError, OSError):
        return []


async def read_async(run_id: int, after: str, *, block_ms: int | None) -> list[tuple[str, dict[str, Any]]] | None:
    """Like :func:`read`, waiting up to ``block_ms`` for the next delta (XREAD BLOCK; ``None``:
    do not wait). ``None`` when Redis did not answer."""
    loop_id = id(asyncio.get_running_loop())  # one connection pool per event loop
    client = _async.get(loop_id)
    if client is None:
        client = _async[loop_id] = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5)
    try:
        reply: Any = await client.xread({key(run_id): after}, count=1000, block=block_ms)
    except (redis.RedisError, OSError):
        return None
    return _decode(reply[0][1]) if reply else []
