"""Fixtures for the tool registry tests: seeded tenants and a ToolContext factory."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

import pytest

from agentops.toolbox.seed import seed_demo_data
from agentops.tools.registry import ToolContext
from tests.conftest import reference_dir

_tool_use_ids = count(1)


@pytest.fixture
def seeded(tenant):  # type: ignore[no-untyped-def]
    seed_demo_data(tenant)
    return tenant


@pytest.fixture
def make_ctx() -> Callable[..., ToolContext]:
    def make(
        tenant: Any, *, run_id: int = 1, tool_use_id: str | None = None, allow: dict[str, Any] | None = None
    ) -> ToolContext:
        return ToolContext(
            tenant_id=tenant.pk,
            run_id=run_id,
            agent_id=1,
            tool_use_id=tool_use_id or f"toolu_{next(_tool_use_ids):06d}",
            allow=allow or {},
        )

    return make


def injection_samples() -> list[str]:
    """Attack strings, one per line; comments and blank lines skipped."""
    lines = (reference_dir() / "injection" / "injection_samples.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]
