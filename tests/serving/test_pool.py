"""The optional psycopg pool (``DB_POOL_MAX_SIZE``) is fork-safe: a forked child (RQ's work horse)
opens connections of its own and leaves the parent's session alone."""

from __future__ import annotations

import subprocess
import sys

from tests.serving.procs import ROOT, app_env
from tests.workers import _database_url

SCRIPT = """
import os
import django
django.setup()
from django.conf import settings
from django.db import connection
assert settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] == 2

def backend_pid():
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]

parent = backend_pid()
child = os.fork()
if child == 0:
    try:
        ok = backend_pid() != parent
    except Exception:
        ok = False
    os._exit(0 if ok else 1)
_, status = os.waitpid(child, 0)
assert os.waitstatus_to_exitcode(status) == 0, "the child used the parent's connection"
assert backend_pid() == parent, "the parent lost its session"
connection.close()
print("OK")
"""


def test_a_forked_child_gets_its_own_pooled_connection(db, settings):
    env = app_env(_database_url(), settings.REDIS_URL, DB_POOL_MAX_SIZE="2", DJANGO_SETTINGS_MODULE="agentops.settings")
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stdout + out.stderr
