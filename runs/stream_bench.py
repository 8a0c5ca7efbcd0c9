"""``manage.py bench stream-latency``: how long a streamed delta takes to reach an SSE client.

The scripted Messages API streams the ``streamed_answer`` scenario with ``pace_ms`` between SSE
events; a timing transport notes when each ``text_delta`` event leaves it. Three receivers:

* **direct**: the SDK's own stream (``client.messages.stream``) — when each text event arrives;
* **relayed**: the harness path in this process — the gateway's stream relays each delta to the
  run's Redis stream (:class:`agentops.harness.deltas.DeltaRelay`, redacting as it goes) in a worker
  thread, while the runs API's async SSE generator (:func:`runs.live.event_stream_async`) yields
  ``text_delta`` frames to a consumer here;
* **http**: the same relay, read by an SSE client over HTTP from the Procfile's ``events`` server
  (uvicorn, ``GET /api/v1/runs/<id>/events``) started for the bench.

Latency = receive time − send time, per delta (relayed: per piece, from its source event). Also:
time to first token vs the whole call.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx2
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest

from agentops.bench import benchmark
from agentops.harness import deltas
from agentops.llm import gateway
from agentops.llm.replies import ScriptedReply
from agentops.llm.scenario import load_scenario
from agentops.llm.scripted import SCENARIO_HEADER, ScriptedTransport
from runs import live
from runs.models import Agent, Run, RunStatus
from tenants.models import Tenant, Tier
from tenants.services import api_key_create

SCENARIO = "streamed_answer"
MODEL = "claude-haiku-4-5"


class TimingTransport(ScriptedTransport):
    """The scripted transport, noting when each event (and each text_delta event) is handed to the client."""

    def __init__(self, pace_ms: int) -> None:
        super().__init__(redis_url="")
        self.pace_ms = pace_ms
        self.sent: list[float] = []  # text_delta events
        self.last_sent = 0.0  # the latest event of any type

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        reply = self._reply(request)
        reply.pace_ms = self.pace_ms
        return self._streamed(reply, request, self._timed(reply))

    def _timed(self, reply: ScriptedReply) -> Iterator[bytes]:
        for i, event in enumerate(reply.events or []):
            if i:
                time.sleep(reply.pace_ms / 1000)
            self.last_sent = time.perf_counter()
            if b'"text_delta"' in event:
                self.sent.append(self.last_sent)
            yield event


class SourceTimedRelay(deltas.DeltaRelay):
    """The harness's relay, each entry tagged with when the scripted API sent the event that
    produced it (``sent_at``). The relay holds back a word that could be the start of a secret, so
    relayed pieces are not the API's deltas one for one; the tag pairs each piece with its source."""

    def __init__(self, run_id: int, seq: int, transport: TimingTransport) -> None:
        super().__init__(run_id, seq)
        self.transport = transport

    def _send(self, delta: dict[str, Any]) -> None:
        super()._send({**delta, "sent_at": self.transport.last_sent})


def _client(transport: TimingTransport) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=gateway.SCRIPTED_API_KEY,
        base_url=gateway.SCRIPTED_BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )


def _kwargs() -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "What happened to my invoice?"}],
        "extra_headers": {SCENARIO_HEADER: SCENARIO},
    }


def direct(pace_ms: int) -> tuple[list[float], float, float]:
    """One direct SDK stream: per-delta latencies (ms), time to first token and total (ms)."""
    transport = TimingTransport(pace_ms)
    client = _client(transport)
    received: list[float] = []
    started = time.perf_counter()
    with client.messages.stream(**_kwargs()) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                received.append(time.perf_counter())
    total = (time.perf_counter() - started) * 1000
    lat = [(r - s) * 1000 for s, r in zip(transport.sent, received, strict=True)]
    return lat, (received[0] - started) * 1000, total


def _bench_run() -> Run:
    tier, _ = Tier.objects.get_or_create(slug="bench", defaults={"name": "Benchmark"})
    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Benchmark", "tier": tier})
    agent, _ = Agent.objects.get_or_create(tenant=tenant, name="bench-stream", defaults={"model": MODEL})
    return Run.objects.create(tenant=tenant, agent=agent, input="benchmark", status=RunStatus.RUNNING)


def relayed(run: Run, seq: int, pace_ms: int) -> list[float]:
    """One gateway stream relayed through Redis to the async SSE generator: per relayed text piece,
    the time from the scripted API sending its source event to the SSE client receiving it (ms)."""
    transport = TimingTransport(pace_ms)
    client = _client(transport)
    expected = "".join(b["text"] for b in load_scenario(SCENARIO).steps[0].content if b["type"] == "text")
    received: list[float] = []
    text: list[str] = []
    kwargs = _kwargs()
    model = kwargs.pop("model")
    worker = threading.Thread(
        target=gateway._stream, args=(client, model, kwargs, SourceTimedRelay(run.pk, seq, transport))
    )

    async def consume() -> None:
        # No RunEvent is newer than 10**15; deltas of the earlier calls (lower seq) are skipped.
        cursor = live.Cursor(after=10**15, delta="0", done_seq=seq - 1)
        stream = live.event_stream_async(HttpRequest(), run, cursor, True)
        worker.start()
        async for frame in stream:
            if "event: text_delta" in frame:
                now = time.perf_counter()
                data = json.loads(frame.split("data: ", 1)[1])
                received.append((now - data["sent_at"]) * 1000)
                text.append(data["text"])
            if frame.startswith("event: end") or "".join(text) == expected:
                break
        await stream.aclose()
        # The generator's queries ran on asgiref's thread: close that thread's connection.
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    asyncio.run(consume())
    worker.join()
    if "".join(text) != expected:
        raise RuntimeError(f"the SSE client got {len(''.join(text))} of {len(expected)} characters")
    return received


@contextmanager
def events_server() -> Iterator[str]:
    """The Procfile's ``events`` process (uvicorn, ``agentops.asgi``) on a free local port, on this
    process's database and Redis; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = connections["default"].settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agentops.settings",
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "agentops.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the events server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def over_http(base: str, key: str, run: Run, pace_ms: int) -> list[float]:
    """One gateway stream relayed through Redis to an SSE client reading
    ``GET /api/v1/runs/<id>/events`` from the ``events`` server: per relayed text piece, the time
    from the scripted API sending its source event to the client reading the frame (ms)."""
    transport = TimingTransport(pace_ms)
    expected = "".join(b["text"] for b in load_scenario(SCENARIO).steps[0].content if b["type"] == "text")
    kwargs = _kwargs()
    model = kwargs.pop("model")
    relay = SourceTimedRelay(run.pk, 1, transport)
    worker = threading.Thread(target=gateway._stream, args=(_client(transport), model, kwargs, relay))
    received: list[float] = []
    text: list[str] = []
    url = f"{base}/api/v1/runs/{run.pk}/events"  # http://127.0.0.1: the server events_server() started
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310
        resp.readline()  # "retry: ...": the stream is open
        worker.start()
        for raw in resp:
            line = raw.decode()
            if line.startswith("data: ") and '"text_delta"' in line:
                now = time.perf_counter()
                data = json.loads(line[6:])
                received.append((now - data["sent_at"]) * 1000)
                text.append(data["text"])
                if "".join(text) == expected:
                    break
    worker.join()
    if "".join(text) != expected:
        raise RuntimeError(f"the HTTP SSE client got {len(''.join(text))} of {len(expected)} characters")
    return received


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@benchmark(
    "stream-latency",
    help="Delta latency scripted API -> SSE client (in process, and over HTTP from the events server) "
    "beside a direct SDK stream.",
    calls=5,
    pace_ms=20,
)
def stream_latency(*, stdout: Any, calls: int, pace_ms: int) -> dict[str, Any]:
    settings.ANTHROPIC_API_KEY = ""
    calls, pace_ms = int(calls), int(pace_ms)
    direct_lat: list[float] = []
    ttft: list[float] = []
    totals: list[float] = []
    relay_lat: list[float] = []
    http_lat: list[float] = []
    http_first: list[float] = []
    run = _bench_run()
    key = api_key_create(tenant=run.tenant, actor=None, name="bench-stream-latency", scopes=["runs"])[1]
    with events_server() as base:
        for i in range(calls):
            lat, first, total = direct(pace_ms)
            direct_lat += lat
            ttft.append(first)
            totals.append(total)
            relay_lat += relayed(run, i + 1, pace_ms)
            over = over_http(base, key, _bench_run(), pace_ms)
            http_lat += over
            http_first.append(over[0])
    if not direct_lat or not relay_lat or not http_lat:
        raise RuntimeError("stream-latency measured nothing")
    stdout.write(
        f"{calls} streamed calls, {len(relay_lat)} relayed pieces in process, {len(http_lat)} over HTTP, pace {pace_ms} ms"
    )
    return {
        "calls": calls,
        "pace_ms": pace_ms,
        "deltas": len(relay_lat),
        "direct_p50_ms": round(_pct(direct_lat, 0.5), 3),
        "direct_p99_ms": round(_pct(direct_lat, 0.99), 3),
        "relayed_p50_ms": round(_pct(relay_lat, 0.5), 3),
        "relayed_p99_ms": round(_pct(relay_lat, 0.99), 3),
        "http_p50_ms": round(_pct(http_lat, 0.5), 3),
        "http_p99_ms": round(_pct(http_lat, 0.99), 3),
        "http_first_max_ms": round(max(http_first), 3),
        "ttft_p50_ms": round(statistics.median(ttft), 1),
        "total_p50_ms": round(statistics.median(totals), 1),
    }
