"""Live deltas of a run's model calls: written by the worker as the stream arrives, read by SSE.

One Redis stream per run (``agentops:run:<id>:deltas``, capped and expiring): each entry is one
piece of a streamed answer (:data:`agentops.llm.gateway.DeltaSink` shapes) tagged with the ``seq``
the turn will have once persisted. They are a preview only: the durable log is written once per
turn from the final message, and a reader drops the deltas of a turn it has already sent as a
``turn`` event. A ``start`` entry opens every attempt (a retried or fallen-back call starts its
text again). When Redis does not answer, deltas are dropped; the run itself is not affected.

Text and tool input are redacted before they are written, block by block through a
:class:`agentops.redact.RollingRedactor`: a secret split across two deltas is held back until it
is whole, so neither Redis nor any reader ever holds a piece of it, and readers stay stateless
(``Last-Event-ID`` resumes on entry ids alone).
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

from agentops.redact import RollingRedactor

log = logging.getLogger(__name__)

MAXLEN = 5000  # entries kept per run (approximate trim)
TTL_S = 3600  # a stream outlives its last write by an hour
ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")
_PIECE = {"text": "text", "tool_input": "partial_json"}  # the kinds whose field is redacted in pieces

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

    Text and tool input go through a redactor per content block; a ``stop`` (the block, or with
    no index the message, is complete) flushes what it held back. Never raises: a Redis failure
    stops relaying for the rest of this call (logged once).
    """

    def __init__(self, run_id: int, seq: int) -> None:
        self.key = key(run_id)
        self.seq = seq
        self.sent = 0
        self._down = False
        self._blocks: dict[tuple[str, Any], RollingRedactor] = {}

    def __call__(self, delta: dict[str, Any]) -> None:
        kind = delta.get("kind")
        if kind == "start":
            self._blocks.clear()  # a retry or the fallback starts the text again
        elif kind == "stop":
            for (piece_kind, index), redactor in list(self._blocks.items()):
                if delta.get("index") is None or index == delta["index"]:
                    self._send({"kind": piece_kind, "index": index, _PIECE[piece_kind]: redactor.flush()})
                    del self._blocks[(piece_kind, index)]
            return
        elif kind in _PIECE:
            field = _PIECE[kind]
            redactor = self._blocks.setdefault((kind, delta.get("index")), RollingRedactor())
            delta = {**delta, field: redactor.feed(str(delta.get(field, "")))}
        self._send(delta)

    def _send(self, delta: dict[str, Any]) -> None:
        if self._down or (delta.get("kind") in _PIECE and not delta[_PIECE[delta["kind"]]]):
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
    return read_blocking(run_id, after, block_ms=None) or []


def read_blocking(
    run_id: int, after: str, *, block_ms: int | None
) -> list[tuple[str, dict[str, Any]]] | None:
    """Like :func:`read_async`, for a thread: waits up to ``block_ms`` (under the client's 0.5 s
    socket timeout) for the next delta; ``None`` when Redis did not answer."""
    try:
        reply: Any = _client().xread({key(run_id): after}, count=1000, block=block_ms)
    except (redis.RedisError, OSError):
        return None
    return _decode(reply[0][1]) if reply else []


async def read_async(
    run_id: int, after: str, *, block_ms: int | None
) -> list[tuple[str, dict[str, Any]]] | None:
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


def drop(run_ids: list[int]) -> None:
    """Delete these runs' delta streams (an erasure scrubbed their logs); never raises."""
    if not run_ids:
        return
    try:
        _client().delete(*(key(r) for r in run_ids))
    except (redis.RedisError, OSError) as exc:  # they expire within TTL_S anyway
        log.warning(
            "live deltas of %d runs not dropped (%s); they expire within %d s",
            len(run_ids),
            type(exc).__name__,
            TTL_S,
        )
