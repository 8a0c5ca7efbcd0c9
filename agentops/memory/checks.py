"""The online evaluators' check on a fact, as the apps above register it (no model imports here:
an ``AppConfig`` module imports this before the models are ready)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Checker = Callable[[str], Sequence[str]]
_checker: list[Checker] = []


def register_checker(checker: Checker) -> None:
    """Set the check (text -> flags). Called from ``RunsConfig.ready()``, above both this app and the
    harness: memory never imports the harness (the harness imports memory)."""
    _checker.clear()
    _checker.append(checker)


def flags_for(text: str) -> list[str]:
    if not _checker:
        raise RuntimeError("no fact checker registered: is the 'runs' app installed?")
    return sorted(set(_checker[0](text)))
