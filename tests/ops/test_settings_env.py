"""Settings read from the environment the way operators set it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'agentops.settings'; django.setup(); " \
        "from django.conf import settings; d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'])"


def _engine(database_url: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_a_blank_database_url_means_the_sqlite_default_not_a_crash():
    # A set-but-empty variable (``DATABASE_URL= python3 dev.py demo``, a blank line in an env file) once
    # gave django-environ's engine-less dict and a KeyError: 'ENGINE' at start-up.
    assert _engine("").startswith("django.db.backends.sqlite3 ")
    assert _engine("  ").startswith("django.db.backends.sqlite3 ")
    assert _engine(None).startswith("django.db.backends.sqlite3 ")
    assert _engine("postgres://postgres@127.0.0.1:5432/agentops_probe") == "django.db.backends.postgresql agentops_probe"
