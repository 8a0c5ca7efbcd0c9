"""Shared fixtures: the tenant, its members by role, and an outsider from another tenant.

Tests run against real PostgreSQL and Redis. If either is missing the session stops with a
clear message: nothing skips silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import time_machine
from django.test import Client

from tenants.models import Role
from tests.factories import PASSWORD, MembershipFactory, TenantFactory, UserFactory


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Hashing is not under test; the default hasher costs ~100 ms per login.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(
            f"Tests need PostgreSQL (got {engine}). Run them with `python3 dev.py test`, "
            "or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/agentops.",
            returncode=3,
        )
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Tests need Redis at {settings.REDIS_URL}: {exc}", returncode=3)


@pytest.fixture(autouse=True)
def _clean_redis() -> None:
    """Each test starts with an empty Redis database (the tests use their own db number)."""
    import django_rq

    django_rq.get_connection("default").flushdb()


# Tests whose outcome depends on the date (windows by day and month, "today", "yesterday", the
# rate limit's minute) run on this frozen clock, never on the wall clock: mid-month, mid-day.
# TEST_FROZEN_AT (ISO 8601) moves it, e.g. to the last second of a month, to try the boundaries.
FROZEN_AT = datetime.fromisoformat(os.environ.get("TEST_FROZEN_AT") or "2026-11-18T10:30:00+00:00")


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The clock frozen at FROZEN_AT (time-machine); ``clock.move_to(dt)`` / ``clock.shift(td)`` travel.

    Everything that reads the time in this process (``timezone.now()``, ``date.today()``,
    ``time.time()``) sees it; ``time.monotonic()`` and PostgreSQL's ``now()`` do not, so tests
    that lease runs or start workers keep the wall clock.
    """
    with time_machine.travel(FROZEN_AT, tick=False) as traveller:
        yield traveller


def reference_dir() -> Path:
    """``shared/reference`` beside the project (found from a git worktree too); missing fails, never skips."""
    for parent in Path(__file__).resolve().parents[1:]:
        candidate = parent / "shared" / "reference"
        if candidate.is_dir():
            return candidate
    pytest.fail("shared/reference (the recorded API bodies and samples) is missing beside the project")


def ensure_model_prices() -> None:
    """Transactional tests truncate every table, including the prices the data migration seeded."""
    from importlib import import_module

    from django.apps import apps

    from budgets.models import ModelPrice

    if not ModelPrice.objects.exists():
        import_module("budgets.migrations.0002_seed_model_prices").seed(apps, None)


@pytest.fixture
def tenant(db):  # type: ignore[no-untyped-def]
    ensure_model_prices()
    return TenantFactory(slug="acme", name="Acme")


@pytest.fixture
def other_tenant(db):  # type: ignore[no-untyped-def]
    return TenantFactory(slug="globex", name="Globex")


@pytest.fixture
def members(tenant):  # type: ignore[no-untyped-def]
    """One user per role in ``tenant``, keyed by role."""
    return {role: MembershipFactory(tenant=tenant, role=role, user=UserFactory(username=f"acme-{role}")).user for role in Role.values}


@pytest.fixture
def admin_user(members):  # type: ignore[no-untyped-def]
    return members[Role.ADMIN]


@pytest.fixture
def outsider(other_tenant):  # type: ignore[no-untyped-def]
    """An admin of another tenant: must see nothing of ``tenant``."""
    return MembershipFactory(tenant=other_tenant, role=Role.ADMIN, user=UserFactory(username="globex-admin")).user


def login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def client_for():  # type: ignore[no-untyped-def]
    return login
