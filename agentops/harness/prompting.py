"""What a run is told to be: the resolved prompt, as the harness reads it.

``Agent.resolve_prompt()`` returns one of these once, at the run's first model call; the loop
uses its fields and never asks again, so a label moved while the run is in flight does not change
the run. The prompts app fills every field from an immutable ``PromptVersion``; an agent that follows
no prompt gives its inline text and leaves the version fields empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol

# ``{{ name }}`` in a version's system text or first-message template.
VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


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
    # The first user message's template and the variables it declares (a run submitted with
    # ``variables`` gets the rendered template as its input).
    first_message: str = ""
    variables: tuple[str, ...] = ()


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


class VariablesMismatch(ValueError):
    """Variables given for a first-message template do not match the ones it declares."""

    def __init__(self, *, missing: list[str], extra: list[str]) -> None:
        self.missing, self.extra = missing, extra
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + ([f"not declared: {', '.join(extra)}"] if extra else [])
        super().__init__("Variables do not match the first-message template (" + "; ".join(parts) + ").")


def render_first_message(prompt: ResolvedPrompt, values: dict[str, Any]) -> str:
    """The template with every declared variable replaced; raises :class:`VariablesMismatch` listing the
    declared variables not given and the given ones not declared (values must be strings)."""
    missing = [name for name in prompt.variables if name not in values]
    extra = sorted(name for name in values if name not in prompt.variables)
    if missing or extra:
        raise VariablesMismatch(missing=missing, extra=extra)
    bad = sorted(name for name, value in values.items() if not isinstance(value, str))
    if bad:
        raise ValueError(f"Variable values must be strings: {', '.join(bad)}.")
    return VARIABLE_RE.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), prompt.first_message)
