"""What a run is told to be: the resolved prompt, as the harness reads it.

``Agent.resolve_prompt()`` returns one of these once, at the run's first model call; the loop
uses its fields and never asks again, so a label moved while the run is in flight does not change
the run. The prompts app fills every field from an immutable ``PromptVersion``; an agent that follows
no prompt gives its inline text and leaves the version fields empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ResolvedPrompt:
    system: str
    # The PromptVersion this came from (None: the agent's inline text).
    version_id: int | None = None
    version_number: int | None = None
    sha256: str | None = None
    prompt_id: int | None = None
    # Overrides of the agent's own settings; None / empty keeps the agent's.
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # max_tokens, temperature, stop_sequences, ...
    tools: tuple[str, ...] | None = None
    # Output validators run on the final answer (configured on the version; see the evals issue).
    validators: tuple[dict[str, Any], ...] = ()


class PromptResolver(Protocol):
    def resolve(self, *, agent: Any, run: Any | None) -> ResolvedPrompt | None:
        """The version ``run`` is pinned to; else the one the agent's label points at, pinned on ``run``
        (once: a run that already has a version never reads the label again). None: the agent follows
        no prompt (or its label points nowhere yet) and the inline text applies."""
        ...


_resolver: list[PromptResolver] = []


def register_resolver(resolver: PromptResolver) -> None:
    """Called from the prompts app's ``AppConfig.ready()``; runs never imports that app."""
    _resolver.clear()
    _resolver.append(resolver)


def resolver() -> PromptResolver | None:
    return _resolver[0] if _resolver else None
