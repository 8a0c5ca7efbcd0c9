"""Fixtures for the budgets tests: an agent, runs, and helpers shared with child processes."""

from __future__ import annotations

import importlib

import pytest

from runs.models import Agent, Run, RunStatus


@pytest.fixture(autouse=True)
def _prices(request):  # type: ignore[no-untyped-def]
    """Seeded prices: transactional tests flush the tables the data migration filled."""
    from budgets.pricing import prices_cache_clear

    prices_cache_clear()  # a price row created by an earlier, rolled-back test must not linger
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    request.getfixturevalue("transactional_db" if marker.kwargs.get("transaction") else "db")
    from django.apps import apps

    seed = importlib.import_module("budgets.migrations.0002_seed_model_prices").seed
    seed(apps, None)


@pytest.fixture
def agent(tenant):  # type: ignore[no-untyped-def]
    return Agent.objects.create(tenant=tenant, name="support", system_prompt="You help.", model="claude-sonnet-4-5")


@pytest.fixture
def make_run(tenant, agent, members):  # type: ignore[no-untyped-def]
    def make(**kw):  # type: ignore[no-untyped-def]
        kw.setdefault("tenant", tenant)
        kw.setdefault("agent", agent)
        kw.setdefault("submitted_by", members["operator"])
        kw.setdefault("input", "hello")
        kw.setdefault("status", RunStatus.RUNNING)
        return Run.objects.create(**kw)

    return make
