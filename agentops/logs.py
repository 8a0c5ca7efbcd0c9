"""Structured JSON logs carrying tenant, run and trace ids, redacted before they leave the process."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

from opentelemetry import trace

from agentops.redact import redact

log_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("log_context", default=None)


def bind(**fields: str | int | None) -> contextvars.Token[dict[str, str] | None]:
    merged = {**(log_context.get() or {}), **{k: str(v) for k, v in fields.items() if v is not None}}
    return log_context.set(merged)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = ()
        return True


class ClientErrorFilter(logging.Filter):
    """Django logs a raised PermissionDenied (and other 4xx exceptions) with its traceback; any
    member could fill the log with them. A client error is one line: the traceback is dropped and
    the status kept. Server errors (5xx) keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            payload["status"] = status
        payload.update(log_context.get() or {})
        try:
            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                payload["trace_id"] = f"{ctx.trace_id:032x}"
                payload["span_id"] = f"{ctx.span_id:016x}"
        except Exception:  # noqa: S110 - logging must never fail on telemetry
            pass
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)
