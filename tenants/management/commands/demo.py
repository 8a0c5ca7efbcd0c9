"""``manage.py demo [--no-serve] [--port N]``: the README's first command.

Migrates, seeds three tenants idempotently, starts two real ``rqworker`` processes when Redis
answers (jobs run in-process otherwise, and it says so), runs every step in
``agentops.demo.DEMO_STEPS``, then serves the console on 127.0.0.1 and prints, last, the URL,
the logins per tenant, the password, the staff login and each tenant's fresh API key.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from agentops import demo as demo_pkg
from agentops.demo.context import DemoContext
from agentops.demo.seed import STAFF_USERNAME, seed
from agentops.jobs import redis_available
from tenants.models import Role

WORKERS = 2


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _safe_url(url: str) -> str:
    """``url`` without its password, for printing."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the children


class Command(BaseCommand):
    help = "Seed the demo tenants, start workers, run the demo steps and serve the console."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="Seed and run the steps, then exit.")
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="Port on 127.0.0.1 (default $PORT or 8000).")

    def handle(self, *args: Any, **options: Any) -> None:
        port: int = options["port"]
        serve = not options["no_serve"]
        if not 0 < port < 65536:
            raise CommandError(f"--port must be 1-65535, not {port}.")
        if serve and not _port_free(port):
            raise CommandError(f"Port {port} on 127.0.0.1 is in use. Stop what runs there or pick another: PORT=8001 python3 dev.py demo")
        base_url = f"http://127.0.0.1:{port}"
        self.children: list[subprocess.Popen[bytes]] = []
        signal.signal(signal.SIGTERM, _sigterm)
        # A shell starts background jobs with SIGINT ignored; Ctrl-C must still stop the demo.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self._run(base_url=base_url, port=port, serve=serve)
        except KeyboardInterrupt:
            self.stdout.write("\n==> stopping")
        finally:
            self._stop_children()

    # -- steps -------------------------------------------------------------------------------

    def _say(self, message: str) -> None:
        self.stdout.write(f"==> {message}")

    def _run(self, *, base_url: str, port: int, serve: bool) -> None:
        db = settings.DATABASES["default"]
        self._say(f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('NAME')}")
        self._say("migrating")
        call_command("migrate", interactive=False, verbosity=0)

        redis_ok = redis_available(refresh=True)
        self._say("seeding tiers, tenants, users and API keys")
        ctx = seed(stdout=self.stdout, redis_ok=redis_ok, base_url=base_url)
        ctx.processes = self.children  # what a step starts stops with the demo

        if redis_ok:
            self._start_workers()
        else:
            self._say(
                f"NOTICE: Redis does not answer at {_safe_url(settings.REDIS_URL)}: no rqworker processes; "
                "jobs run in-process, in background threads of this command and of the web server. "
                "Start redis-server (or set REDIS_URL) for real workers."
            )

        for path in demo_pkg.DEMO_STEPS:
            self._say(f"step {path}")
            import_string(path)(ctx)

        if not serve:
            self._print_logins(ctx, serving=False)
            return
        self._serve(ctx, port)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "agentops.settings")
        env["PYTHONUNBUFFERED"] = "1"
        # Workers stream scripted answers at a reading pace: the run page types them out.
        env.setdefault("AGENTOPS_SCRIPTED_PACE_MS", "25")
        # The demo MCP server listens on the loopback (runs/mcp_demo.py): exempt it from the SSRF guard.
        env.setdefault("MCP_UNSAFE_ALLOW_NETWORKS", "127.0.0.1/32")
        return env

    def _start_workers(self) -> None:
        command = [sys.executable, str(settings.BASE_DIR / "manage.py"), "rqworker", "runs", "default", "--with-scheduler", "--verbosity", "0"]
        if importlib.util.find_spec("agentops.worker"):
            # The worker class that hands a long run back on a warm shutdown instead of holding the deploy.
            command += ["--worker-class", "agentops.worker.AgentWorker"]
        for _ in range(WORKERS):
            self.children.append(subprocess.Popen(command, env=self._child_env(), cwd=settings.BASE_DIR))
        # The scheduler, as in production (the Procfile's `scheduler`): the reconciler (runs whose worker
        # died), escalation expiry, stale reservations, budget alerts and retention — agentops/periodic.py.
        self.children.append(subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "scheduler"],
            env=self._child_env(), cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL,
        ))
        time.sleep(1.0)
        dead = [p for p in self.children if p.poll() is not None]
        if dead:
            raise CommandError(f"{len(dead)} rqworker process(es) exited at start (exit {dead[0].returncode}); see above.")
        pids = ", ".join(str(p.pid) for p in self.children[:WORKERS])
        self._say(f"Redis answers at {_safe_url(settings.REDIS_URL)}: {WORKERS} rqworker processes on queues runs, default (pids {pids}) and the scheduler")

    def _serve(self, ctx: DemoContext, port: int) -> None:
        env = self._child_env()
        # The demo is plain HTTP on the loopback: cookies must not be Secure-only there, whatever the shell exports.
        env.update({"SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0", "SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0"})
        server = subprocess.Popen(
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
            env=env, cwd=settings.BASE_DIR,
        )
        self.children.append(server)
        deadline = time.monotonic() + 60
        while not _answers(port):
            if server.poll() is not None:
                raise CommandError(f"The web server exited (code {server.returncode}); see above.")
            if time.monotonic() > deadline:
                raise CommandError(f"The web server did not answer on port {port} within 60 s.")
            time.sleep(0.2)
        self._print_logins(ctx, serving=True)
        while True:
            if server.poll() is not None:
                raise CommandError(f"The web server exited (code {server.returncode}).")
            for worker in self.children[:-1]:
                if worker.poll() is not None:
                    self._say(f"WARNING: rqworker {worker.pid} exited (code {worker.returncode})")
                    self.children.remove(worker)
            time.sleep(1.0)

    def _print_logins(self, ctx: DemoContext, *, serving: bool) -> None:
        w = self.stdout.write
        w("")
        w("=" * 72)
        if serving:
            w(f"AgentOps demo is running at {ctx.base_url}/   (Ctrl-C stops it)")
        else:
            w(f"AgentOps demo is seeded; serve it with `python3 dev.py demo` at {ctx.base_url}/")
        w(f"Jobs: {'real rqworker processes (Redis)' if ctx.redis_ok else 'in-process (Redis not answering)'}")
        w(f"Password for every login below: {ctx.password}")
        w(f"Staff (Django admin at {ctx.base_url}/admin/): {STAFF_USERNAME}")
        for slug, tenant in ctx.tenants.items():
            w("")
            w(f"{tenant.name} ({tenant.tier.name} tier)  {ctx.base_url}/t/{slug}/")
            for role in Role.values:
                w(f"  login: {ctx.users[slug][role].username:<24} role: {role}")
            w(f"  API key: {ctx.api_keys[slug]}")
        for username, what in ctx.extra_logins:
            w("")
            w(f"Also: {username}  {what}")
        w("=" * 72)
        self.stdout.flush()

    def _stop_children(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.children.clear()
