"""GenAI-convention spans for a run: ``invoke_agent`` → ``chat {model}`` / ``execute_tool {tool}``.

Each span goes to OpenTelemetry (exported over OTLP when configured) and is also buffered as a
span row (a ``runs.models.Span``, through the run store) for the console's waterfall; buffered rows are written with the step that produced
them, in the same transaction, so the waterfall never shows a step the log does not have.
Attributes pass through redaction: no secrets or PII reach a trace.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from agentops.harness import hooks
from agentops.harness.store import RunRecord, SpanRow
from agentops.redact import redact_obj
from agentops.telemetry import tracer


class RunTracer:
    def __init__(self, run: RunRecord):
        self.run = run
        self.pending: list[SpanRow] = []
        self.trace_id = ""

    @contextlib.contextmanager
    def span(self, name: str, attributes: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """A span whose attributes the body may add to (the yielded dict)."""
        attrs: dict[str, Any] = dict(attributes or {})
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        status = "ok"
        with tracer().start_as_current_span(name, kind=trace.SpanKind.INTERNAL if not name.startswith("chat") else trace.SpanKind.CLIENT) as otel_span:
            ctx = otel_span.get_span_context()
            parent = getattr(otel_span, "parent", None)
            try:
                yield attrs
            except BaseException as exc:
                status = "error"
                attrs.setdefault("error.type", type(exc).__name__)
                otel_span.set_status(Status(StatusCode.ERROR))
                raise
            finally:
                if attrs.get("error.type"):
                    status = "error"
                clean = {k: v for k, v in redact_obj(attrs).items() if v is not None}
                for key, value in clean.items():
                    if isinstance(value, str | bool | int | float):
                        otel_span.set_attribute(key, value)
                    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                        otel_span.set_attribute(key, value)
                self.trace_id = f"{ctx.trace_id:032x}"
                self.pending.append(
                    SpanRow(
                        trace_id=self.trace_id,
                        span_id=f"{ctx.span_id:016x}",
                        parent_span_id=f"{parent.span_id:016x}" if parent else "",
                        name=name,
                        started_at=started,
                        ended_at=datetime.now(UTC),
                        duration_ms=(time.perf_counter() - t0) * 1000,
                        attributes=clean,
                        status=status,
                    )
                )

    def flush(self) -> None:
        if self.pending:
            hooks.run_store().add_spans(self.run, self.pending)
            self.pending = []
