"""Production settings pass ``manage.py check --deploy --fail-level WARNING`` with the env values
the README documents, and the development defaults do not (so the check has teeth)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The production values README.md documents under "Production environment".
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "agentops.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://agentops.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "BEHIND_TLS_PROXY": "1",
}
# Dropped from the inherited environment so only the values above decide (the browser tests set
# DJANGO_ALLOW_ASYNC_UNSAFE, which the deploy check rightly refuses).
DEV_KEYS = set(PRODUCTION_ENV) | {"SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in DEV_KEYS}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = _check(PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_development_defaults_fail_the_deploy_check():
    result = _check({})
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W009", "security.W012", "security.W016"):
        assert code in result.stderr


def test_the_readme_documents_the_production_values():
    readme = (ROOT / "README.md").read_text()
    for name in PRODUCTION_ENV:
        assert f"{name}=" in readme, name
