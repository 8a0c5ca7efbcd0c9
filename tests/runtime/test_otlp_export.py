"""OTLP export from a real ``rqworker``: the spans of a run reach a collector.

RQ's work horse leaves through ``os._exit`` after every job, so spans still sitting in the batch
processor are lost unless the job flushes them. A local OTLP/HTTP receiver (the wire format a
collector speaks) decodes what the worker sends.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from runs.models import Run, RunStatus, Span
from runs.services import enqueue_run_now
from tests.runtime.conftest import make_run
from tests.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class Receiver(BaseHTTPRequestHandler):
    spans: list[dict[str, Any]]
    paths: list[str]

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.server.spans.append({  # type: ignore[attr-defined]
                        "name": s.name,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "attributes": {a.key: _value(a.value) for a in s.attributes},
                        "resource": resource,
                    })
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.spans = []  # type: ignore[attr-defined]
    server.paths = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_worker_exports_every_span_of_a_run_over_otlp(agent, collector):
    endpoint = f"http://127.0.0.1:{collector.server_port}"
    run = make_run(agent, "support_refund")
    with workers(1, "runs", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_SERVICE_NAME="agentops-test-worker"):
        enqueue_run_now(run)
        wait_for(lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED, timeout=60, message="the run")
        rows = list(Span.objects.filter(run=run))
        # The receiver gets every span the console's waterfall has, while the worker keeps running
        # (no shutdown, no atexit: only the end-of-job flush can have sent them).
        wait_for(lambda: len(collector.spans) >= len(rows), timeout=15, message="the spans at the collector")

    assert set(collector.paths) == {"/v1/traces"}
    got = {s["span_id"]: s for s in collector.spans}
    assert {r.span_id for r in rows} <= set(got), "a span the run recorded never reached the collector"
    names = [s["name"] for s in collector.spans]
    assert "invoke_agent support" in names
    assert names.count("chat claude-sonnet-4-6") == 4
    assert {"execute_tool lookup_account", "execute_tool search_transactions", "execute_tool issue_refund"} <= set(names)

    [root] = [s for s in collector.spans if s["name"] == "invoke_agent support"]
    assert root["resource"]["service.name"] == "agentops-test-worker"
    assert root["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert root["attributes"]["gen_ai.agent.name"] == "support"
    chat_ids = {s["span_id"] for s in collector.spans if s["name"].startswith("chat ")}
    for s in collector.spans:
        assert s["trace_id"] == root["trace_id"]  # one trace per run step
        if s["name"].startswith(("chat ", "execute_tool ")):
            assert s["parent_span_id"] == root["span_id"]
        elif s is not root:  # the SDK's own client span, nested under the harness's chat span
            assert s["name"] == "anthropic.messages.create" and s["parent_span_id"] in chat_ids
    chat = next(s for s in collector.spans if s["name"].startswith("chat "))
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert chat["attributes"]["gen_ai.provider.name"] == "anthropic"
    assert chat["attributes"]["gen_ai.request.model"] == "claude-sonnet-4-6"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] > 0 and chat["attributes"]["gen_ai.usage.output_tokens"] > 0
    refund = next(s for s in collector.spans if s["name"] == "execute_tool issue_refund")
    assert refund["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert refund["attributes"]["gen_ai.tool.name"] == "issue_refund"
    assert refund["attributes"]["gen_ai.tool.call.id"].startswith("toolu_")
