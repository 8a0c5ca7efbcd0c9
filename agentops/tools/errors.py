"""Tool errors. Each carries the ``error_class`` reported to the model and the console, and whether
it is ``deterministic`` (the same call fails the same way again, so it is never retried).

Messages are written for the model: they say what was wrong and never echo large argument values.
"""

from __future__ import annotations


class ToolError(Exception):
    """Base class. A tool raises a subclass to return a structured ``is_error`` result."""

    error_class: str = "tool_error"
    deterministic: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ToolValidationError(ToolError):
    """The arguments do not match the schema or the tool's own rules (e.g. refund above the charge)."""

    error_class = "validation_error"


class ToolNotFoundError(ToolError):
    """An unknown tool name, or a record the tool looked for does not exist in this tenant."""

    error_class = "not_found"


class ToolPermissionError(ToolError):
    """A grant's allow-list refuses the arguments, or a network destination is forbidden."""

    error_class = "permission_denied"


class TransientToolError(ToolError):
    """A failure worth retrying (timeout, connection reset, lock contention).

    Contract for tools with side effects: raise this only when the effect did not happen or when a
    retry is keyed by the idempotency key, so the retry cannot repeat it.
    """

    error_class = "transient_error"
    deterministic = False

    def __init__(self, message: str, *, not_delivered: bool = False) -> None:
        super().__init__(message)
        # True when the call provably never reached the tool (e.g. connection refused before the
        # request was sent): retrying it cannot repeat an effect, so even a non-idempotent tool is retried.
        self.not_delivered = not_delivered
