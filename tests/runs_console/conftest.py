from __future__ import annotations

import pytest

from tests.runs_console.factories import AgentFactory


@pytest.fixture
def agent(tenant):  # type: ignore[no-untyped-def]
    return AgentFactory(tenant=tenant, name="support")


@pytest.fixture
def admin(client_for, admin_user):  # type: ignore[no-untyped-def]
    return client_for(admin_user)

