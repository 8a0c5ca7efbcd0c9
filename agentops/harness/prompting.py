"""What a run is told to be: the resolved prompt, as the harness reads it.

``Agent.resolve_prompt()`` returns one of these once, at the run's first model call; the loop
uses its fields and never asks again, so a label moved while the run is in flight does not change
the run. The prompts app fills every field from an immutable ``PromptVersion``; an agent that follows
no prompt gives its inline text and leaves the version fields empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
