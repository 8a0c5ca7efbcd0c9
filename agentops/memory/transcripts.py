"""Erasing facts from run transcripts: the hook through which memory reaches the runs' durable logs.

A fact is also in the log of the run that wrote it (the ``remember`` tool_use input and its
tool_result), in the idempotency ledger, and wherever a model repeated it word for word. Memory sits
beside the harness, below ``runs``, and never imports either: ``RunsConfig.ready()`` registers the
scrubber (``runs.erasure``), as it registers the fact checker (:mod:`agentops.memory.checks`).
No model imports here: an ``AppConfig`` module imports this before the models are ready.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

MARKER = "[erased: memory subject]"


@dataclass(frozen=True)
class Erased:
    """What is being erased: the facts' ids and stored texts; ``subject`` when the whole subject goes
    (then every ``remember`` call about it is scrubbed, even one whose fact was refused)."""

    tenant_id: int
    fact_ids: tuple[int, ...]
    texts: tuple[str, ...]
    subjects: tuple[str, ...]
    source_run_ids: tuple[int, ...]
    whole_subject: str | None = None


@dataclass(frozen=True)
class Scrubbed:
    """Counts only (they go in the audit row): never the text."""

    runs: int = 0
    messages: int = 0
    tool_calls: int = 0
    events: int = 0
    escalations: int = 0

    def as_audit(self) -> dict[str, int]:
        return {
            "runs_scrubbed": self.runs,
            "messages_scrubbed": self.messages,
            "tool_calls_scrubbed": self.tool_calls,
            "events_scrubbed": self.events,
            "escalations_scrubbed": self.escalations,
        }


Scrubber = Callable[[Erased], Scrubbed]
_scrubber: list[Scrubber] = []


def register_scrubber(scrubber: Scrubber) -> None:
    """Called from ``RunsConfig.ready()``."""
    _scrubber.clear()
    _scrubber.append(scrubber)


def scrub(erased: Erased) -> Scrubbed:
    """Scrub the runs' logs, in the caller's transaction (the facts' deletion and the audit row)."""
    if not _scrubber:
        raise RuntimeError("no transcript scrubber registered: is the 'runs' app installed?")
    if not erased.fact_ids and erased.whole_subject is None:
        return Scrubbed()
    return _scrubber[0](erased)


def replace_texts(value: object, texts: Sequence[str]) -> object:
    """``value`` (JSON-shaped) with every occurrence of ``texts`` in its strings replaced by the marker."""
    if isinstance(value, str):
        for text in texts:
            if text and text in value:
                value = value.replace(text, MARKER)
        return value
    if isinstance(value, list):
        return [replace_texts(v, texts) for v in value]
    if isinstance(value, dict):
        return {k: replace_texts(v, texts) for k, v in value.items()}
    return value
