"""OpenTelemetry setup: a tracer provider with the OTLP exporter when configured.

Spans follow the GenAI semantic conventions (``invoke_agent``, ``chat {model}``,
``execute_tool {tool}``). The same span data is also written to the run's trace rows so the
console can draw the waterfall without a collector.
"""

from __future__ import annotations

import threading

from django.conf import settings
from opentelemetry import trace
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
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True


def instrument_django() -> None:
    configure()
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    if not DjangoInstrumentor().is_instrumented_by_opentelemetry:
        DjangoInstrumentor().instrument()


def tracer() -> trace.Tracer:
    configure()
    return trace.get_tracer("agentops")
