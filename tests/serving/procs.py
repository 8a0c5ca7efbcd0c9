"""Real processes for the serving tests: app servers and HTTP helpers (the private PostgreSQL is\n``tests.services.private_postgres``, shared with the outage tests).

Everything here runs on 127.0.0.1 on ports picked by binding to port 0, and is stopped by the test
that started it (process groups, so a server's workers go with it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var"

# Seeds one tenant, an admin who can log in, an agent and a "runs" API key; prints the raw key.
SEED = """
from decimal import Decimal
from django.contrib.auth import get_user_model
from runs.models import Agent
from tenants.models import Membership, Role, Tenant, Tier
from tenants.services import api_key_create
tier, _ = Tier.objects.get_or_create(slug="team", defaults={"name": "Team"})
tier.task_cost_cap = tier.user_day_cost_cap = tier.user_month_cost_cap = tier.tenant_month_cost_cap = Decimal("100")
tier.max_concurrent_runs = 50
tier.api_rate_limit_per_minute = 1000
tier.save()
tenant = Tenant.objects.create(slug="acme", name="Acme", tier=tier)
user = get_user_model().objects.create_user("acme-admin", password="serve-test-password")
Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
Agent.objects.create(tenant=tenant, name="helper", system_prompt="Be brief.", model="claude-sonnet-4-6")
print("KEY=" + api_key_create(tenant=tenant, actor=None, name="serve-test", scopes=["runs"])[1])
"""
PASSWORD = "serve-test-password"


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def app_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
        "ANTHROPIC_API_KEY": "",
        "AGENTOPS_SCENARIO": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        # The console's processes, as installed: `gunicorn`, `uvicorn` and `python` from the venv.
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    })
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, f"manage.py {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def seed(env: dict[str, str]) -> str:
    out = manage(env, "shell", "-c", SEED)
    return next(line[4:] for line in out.splitlines() if line.startswith("KEY="))


def spawn(command: str, env: dict[str, str], name: str, port: int | None = None) -> subprocess.Popen[bytes]:
    """One shell command (as honcho runs a Procfile line) in its own process group, logging to var/.

    With ``port``, the process gets it as ``$PORT`` (in its environment and in the command line).
    """
    if port is not None:
        command, env = with_port(command, port), env | {"PORT": str(port)}
    log = open(LOGS / f"test-serve-{name}-{os.getpid()}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log_path = log.name  # type: ignore[attr-defined]
    return proc


def log_of(proc: subprocess.Popen[bytes]) -> str:
    return Path(proc.log_path).read_text(errors="replace")[-4000:]  # type: ignore[attr-defined]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> dict:  # type: ignore[type-arg]
        return json.loads(self.body)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def request(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def procfile() -> dict[str, str]:
    """The Procfile's processes, name -> command, in order."""
    entries: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def with_port(command: str, port: int) -> str:
    """What honcho and the platforms do: each process gets its own ``$PORT``."""
    return command.replace("${PORT}", str(port)).replace("$PORT", str(port))


class Browser:
    """A console user: cookies kept, CSRF token sent, redirects not followed."""

    def __init__(self, base: str):
        import http.cookiejar

        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def open(self, path: str, data: dict[str, str] | None = None) -> Response:
        import urllib.parse

        body = urllib.parse.urlencode(data).encode() if data is not None else None
        headers = {"Referer": self.base + path}
        if data is not None:
            headers["X-CSRFToken"] = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        req = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def login(self, username: str, password: str) -> None:
        page = self.open("/login/")
        assert page.status == 200, page.text[:500]
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        resp = self.open("/login/", {"username": username, "password": password, "csrfmiddlewaretoken": token})
        assert resp.status == 302, (resp.status, resp.text[:500])
