"""Streaming end to end over real HTTP: the Procfile's ``web`` (gunicorn, the WSGI driver) and
``events`` (uvicorn, the ASGI driver) serve a run's SSE stream while the harness (in a thread of
this process) drives a paced scripted scenario. Each server: a client connected from the start gets
its first ``text_delta`` within 50 ms of the scripted API sending it (timed at the source), and a
client that hangs up mid-answer and reconnects with ``Last-Event-ID`` misses nothing and gets
nothing twice. The console's live run page, polled over HTTP meanwhile, shows the answer growing.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections

from agentops.harness import deltas
from agentops.harness.loop import drive_run
from agentops.llm import gateway
from agentops.redact import redact
from runs import stream_bench
from runs.models import RunEvent
from tenants.services import api_key_create
from tests.factories import PASSWORD
from tests.runtime.conftest import make_run
from tests.services import free_port
from tests.serving.procs import Browser, answers, app_env, log_of, procfile, spawn, stop
from tests.workers import _database_url, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PACE_MS = 60
# About 40 deltas of 48 characters, 60 ms apart: long enough to hang up and come back mid-answer.
# The address in it is redacted before any delta leaves the worker.
ANSWER = (
    " ".join(
        f"Step {i}: I checked the ledger entry for March and it matches the bank statement."
        for i in range(1, 23)
    )
    + " Write to jane.canary@example.com if anything still looks wrong."
)
DELTA_EVENTS = {"text_delta", "input_json_delta", "tool_use_start", "stream_start"}


class SourceClock(stream_bench.TimingTransport):
    """The scripted API as the gateway mounts it, noting when each text_delta event leaves it."""

    made: list[SourceClock] = []

    def __init__(self) -> None:
        super().__init__(pace_ms=PACE_MS)
        SourceClock.made.append(self)


class SSEClient:
    """One subscriber in a thread: frames with the time each arrived; hangs up after
    ``hang_up_after`` text deltas (else reads to ``event: end``)."""

    def __init__(
        self, url: str, key: str, *, last_event_id: str | None = None, hang_up_after: int | None = None
    ):
        self.frames: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self.error: BaseException | None = None
        headers = {"Authorization": f"Bearer {key}"} | (
            {"Last-Event-ID": last_event_id} if last_event_id else {}
        )
        self.thread = threading.Thread(target=self._read, args=(url, headers, hang_up_after), daemon=True)
        self.thread.start()

    def _read(self, url: str, headers: dict[str, str], hang_up_after: int | None) -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
                frame: dict[str, Any] = {}
                for raw in resp:
                    self.opened.set()
                    line = raw.decode().rstrip("\n")
                    if line.startswith(("id: ", "event: ")):
                        key, _, value = line.partition(": ")
                        frame[key] = value
                    elif line.startswith("data: "):
                        self.frames.append({**frame, "data": json.loads(line[6:]), "at": time.perf_counter()})
                        frame = {}
                        if self.frames[-1].get("event") == "end":
                            return
                        if hang_up_after is not None and len(self.texts()) >= hang_up_after:
                            return  # closing the response drops the connection mid-stream
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def texts(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == "text_delta"]

    def join(self) -> SSEClient:
        self.thread.join(60)
        assert not self.thread.is_alive() and self.error is None, self.error
        return self


def _keys(frames: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(RunEvent pks, delta stream ids) the frames carried, in order: an id is ``P`` or ``P:R``,
    and a frame advances exactly one of the two cursors."""
    events, relayed = [], []
    for f in frames:
        if "id" not in f:
            continue
        pk, _, delta = f["id"].partition(":")
        (relayed if f["event"] in DELTA_EVENTS else events).append(
            delta if f["event"] in DELTA_EVENTS else pk
        )
    return events, relayed


def _streaming_text(page: str) -> str:
    block = page.split('id="streaming-turn"', 1)[1] if 'id="streaming-turn"' in page else ""
    match = re.search(r'<div class="prose">(.*?)<span class="caret"', block, re.S)
    return html.unescape(match.group(1).replace("<br>", "\n")) if match else ""


@pytest.fixture
def servers():  # type: ignore[no-untyped-def]
    env = app_env(_database_url(), django_settings.REDIS_URL, WEB_CONCURRENCY="1", WEB_THREADS="6")
    ports = {"web": free_port(), "events": free_port()}
    procs = {name: spawn(procfile()[name], env, name, port) for name, port in ports.items()}
    try:
        for name, port in ports.items():
            wait_for(
                lambda p=port, n=name: answers(p) or procs[n].poll() is not None,
                timeout=30,
                message=f"{name} to listen",
            )
            assert procs[name].poll() is None, log_of(procs[name])
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited:\n{log_of(proc)}"
    finally:
        for proc in procs.values():
            stop(proc)


def test_sse_over_http_first_delta_within_50ms_and_resume_by_last_event_id(
    agent, admin_user, servers, tmp_path, monkeypatch, settings
):
    scenario = Path(tmp_path) / "long_answer.json"
    scenario.write_text(
        json.dumps(
            {
                "description": "a long paced answer",
                "pace_ms": PACE_MS,
                "steps": [{"content": [{"type": "text", "text": ANSWER}]}],
            }
        )
    )
    run = make_run(agent, str(scenario))
    key = api_key_create(tenant=agent.tenant, actor=None, name="sse", scopes=["runs"])[1]
    monkeypatch.setattr(gateway, "ScriptedTransport", SourceClock)
    gateway.reset_clients()
    SourceClock.made.clear()
    # The tests hash with MD5 for speed; the server knows only the production hashers.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    admin_user.set_password(PASSWORD)
    admin_user.save(update_fields=["password"])
    console = Browser(servers["web"])
    console.login(admin_user.username, PASSWORD)

    path = f"/api/v1/runs/{run.pk}/events"
    whole = {name: SSEClient(base + path, key) for name, base in servers.items()}
    first_half = {name: SSEClient(base + path, key, hang_up_after=8) for name, base in servers.items()}
    for client in (*whole.values(), *first_half.values()):
        assert client.opened.wait(20), "an SSE stream did not open"

    outcome: list[str] = []

    def harness() -> None:
        try:
            outcome.append(drive_run(run.pk, worker_id="e2e-worker"))
        finally:
            connections.close_all()

    worker = threading.Thread(target=harness)
    worker.start()
    second_half = {}
    for name, client in first_half.items():
        client.join()
        last_id = client.frames[-1]["id"]
        second_half[name] = SSEClient(servers[name] + path, key, last_event_id=last_id)
    pages = []
    while worker.is_alive() and len(pages) < 4:
        pages.append(_streaming_text(console.open(f"/t/{agent.tenant.slug}/runs/{run.pk}/live/").text))
        time.sleep(0.3)
    worker.join(60)
    gateway.reset_clients()
    assert outcome == ["succeeded"]
    for client in (*whole.values(), *second_half.values()):
        client.join()

    persisted = run.messages.get(role="assistant").content[0]["text"]
    shown = redact(persisted)
    assert persisted == ANSWER and "jane.canary" not in shown
    sent = SourceClock.made[0].sent
    assert len(sent) == len(ANSWER) // 48 + 1
    all_events = [
        str(pk) for pk in RunEvent.objects.filter(run=run).order_by("pk").values_list("pk", flat=True)
    ]
    stream_ids = [entry_id for entry_id, _ in deltas.read(run.pk, "0")]
    for name in servers:
        # At once: the first piece of text arrives within 50 ms of the scripted API sending it.
        first = whole[name].texts()[0]["at"] - sent[0]
        assert 0 < first < 0.050, (name, first)
        # Hang up and resume: every event once, every delta once and in order, no gap at the seam.
        before, after = first_half[name].frames, second_half[name].frames
        assert len(first_half[name].texts()) == 8 and after and after[0].get("event") == "text_delta", name
        for frames in (before + after, whole[name].frames):
            events, relayed = _keys(frames)
            assert events == all_events, name
            assert relayed == stream_ids[: len(relayed)] and len(set(relayed)) == len(relayed), name
            text = "".join(f["data"]["text"] for f in frames if f.get("event") == "text_delta")
            assert shown.startswith(text) and len(text) > len(shown) // 2, name
            assert frames[-1]["event"] == "end" and frames[-1]["data"]["status"] == "succeeded"
            assert any(f.get("event") == "turn" and f["data"].get("role") == "assistant" for f in frames)
    # The console's run page, polled as htmx does, showed the answer growing as it was written.
    written = [p for p in pages if p]
    assert len(written) >= 2 and all(shown.startswith(p) for p in written), pages
    assert all(len(a) < len(b) for a, b in zip(written, written[1:], strict=False)), [len(p) for p in written]
