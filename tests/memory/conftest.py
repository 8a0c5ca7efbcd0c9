"""The runtime's fixtures (an agent with the demo toolset and grants, a scripted model), and a fresh
journal cache per test."""

from __future__ import annotations

import pytest

from agentops.memory import journal
from tests.runtime.conftest import _scripted, agent, demo_data, tier_generous  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_journal_cache():  # type: ignore[no-untyped-def]
    journal.reset_cache()
    yield
    journal.reset_cache()
