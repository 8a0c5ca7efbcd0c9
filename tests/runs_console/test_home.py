from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from runs.models import RunStatus
from tests.runs_console.factories import RunFactory

pytestmark = pytest.mark.usefixtures("clock")  # "today" and "the last 7 days"


def test_home_shows_runs_today_and_running_now(agent, admin):
    RunFactory(agent=agent, status=RunStatus.SUCCEEDED)
    RunFactory(agent=agent, status=RunStatus.FAILED)
    RunFactory(agent=agent, status=RunStatus.RUNNING, outcome="")
    RunFactory(agent=agent, status=RunStatus.SUCCEEDED, created_at=timezone.now() - timedelta(days=3))
    resp = admin.get("/t/acme/")
    panels = {p["label"]: p for p in resp.context["panels"]}
    assert panels["Runs today"]["value"] == 3
    assert panels["Runs today"]["detail"].startswith("1 succeeded · 1 failed")
    assert panels["Running now"]["value"] == 1
    assert panels["Runs today"]["url"] == "/t/acme/runs/"
