"""OpenTelemetry setup: a tracer provider with the OTLP exporter when configured.

Spans follow the GenAI semantic conventions (``invoke_agent``, ``chat {model}``,
``execute_tool {tool}``). The same span data is also written to the run's trace rows so the
console can draw the waterfall without a collector.
"""

from __future__ import annotations

import logging
import sys
import threading

from django.conf import settings
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

_lock = threading.Lock()
_configured = False


def configure() -> None:
    global _configured
    with _lock:
        if _configured:
            return
        provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            # Only when an endpoint is configured: the exporter pulls in protobuf and an HTTP client.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True


def instrument_django() -> None:
    configure()
    if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().instrument()


# How long the end-of-job flush may hold a work horse when the collector is slow or down: the job's
# outcome is already recorded, so waiting longer only delays the worker's next job.
FLUSH_TIMEOUT_MS = 5_000


def flush(timeout_ms: int = FLUSH_TIMEOUT_MS) -> None:
    """Export buffered spans and flush log handlers now.

    RQ's work horse leaves through ``os._exit`` after each job, which skips ``atexit`` and so the
    batch processor's export: without this call no span recorded in a job ever reaches the
    collector. Called at the end of every job (``agentops.worker.AgentWorker``); never raises.
    """
    try:
        provider = trace.get_tracer_provider()
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None and force_flush(timeout_ms) is False:
            logging.getLogger(__name__).warning("span export did not finish within %s ms; spans may be lost", timeout_ms)
    except Exception:
        logging.getLogger(__name__).warning("span export failed", exc_info=True)
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # noqa: S110
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def tracer() -> trace.Tracer:
    configure()
    return trace.get_tracer("agentops")
