#!/usr/bin/env python3
"""The two set-up commands: ``python3 dev.py demo`` and ``python3 dev.py test``.

Needs nothing but Python 3.11 and the package registries. It creates ``.venv``, installs the
project into it (again only when ``pyproject.toml`` changed), and hands over to Django.

* ``demo``: migrate, seed tenants/users/keys, run scripted agent traffic through real RQ workers
  (in-process jobs when Redis does not answer), serve the console and print URL, logins and keys.
* ``test``: make sure PostgreSQL and Redis answer (starting the local ones when they do not),
  check ruff, the import layers (``lint-imports``) and the types (``mypy``), then run the whole suite against them with pytest. Extra arguments go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/agentops"
TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def ensure_venv(extras: str) -> None:
    if sys.version_info[:2] != (3, 11):
        say(f"warning: AgentOps targets Python 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        say("creating .venv")
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    # The dev install includes the runtime one: after `dev.py test`, `dev.py demo` installs nothing.
    done = [stamp] if extras else [stamp, VENV / ".installed-dev"]
    if any(p.exists() and p.read_text() == digest for p in done):
        return
    say(f"installing the project into .venv ({extras or 'runtime'} dependencies)")
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--upgrade", "pip"])
    target = f".[{extras}]" if extras else "."
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", target], cwd=ROOT)
    stamp.write_text(digest)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start_service(name: str, host: str, port: int, command: str) -> None:
    if answers(host, port):
        return
    say(f"{name} does not answer on {host}:{port}; starting it")
    subprocess.call(command, shell=True)  # noqa: S602 - fixed commands from this file
    for _ in range(60):
        if answers(host, port):
            return
        time.sleep(0.5)
    sys.exit(f"{name} is still not answering on {host}:{port}. Tests need it; start it and retry.")


def ensure_services() -> None:
    start_service(
        "PostgreSQL", "127.0.0.1", 5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start",
    )
    start_service(
        "Redis", "127.0.0.1", 6379,
        'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    )


def ensure_chromium() -> None:
    """Browser tests drive Debian's Chromium; install it when we are root with apt and it is missing."""
    if Path("/usr/bin/chromium").exists() or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    say("installing Debian's chromium for the browser tests")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.call(["apt-get", "update", "-qq"], env=env)
    subprocess.call(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], env=env)


def cmd_demo(args: list[str]) -> int:
    ensure_venv("")
    # Become `manage.py demo` rather than wait for it: Ctrl-C or a SIGTERM then reaches the demo itself,
    # which stops its workers and servers (a waiting parent would SIGKILL it on KeyboardInterrupt first,
    # leaving them running).
    os.chdir(ROOT)
    os.execv(str(PY), [str(PY), "manage.py", "demo", *args])  # noqa: S606 - our own venv Python, fixed argv


def cmd_test(args: list[str]) -> int:
    ensure_venv("dev")
    ensure_services()
    ensure_chromium()
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", TEST_DATABASE_URL)
    env.setdefault("REDIS_URL", TEST_REDIS_URL)
    say("ruff check")
    rc = subprocess.call([str(PY), "-m", "ruff", "check", "."], cwd=ROOT, env=env)
    if rc:
        return rc
    say("lint-imports (the layers in .importlinter)")
    rc = subprocess.call([str(VENV / "bin" / "lint-imports"), "--no-cache"], cwd=ROOT, env=env)
    if rc:
        return rc
    say("mypy (the application code; [tool.mypy] in pyproject.toml)")
    rc = subprocess.call([str(PY), "-m", "mypy"], cwd=ROOT, env=env)
    if rc:
        return rc
    say(f"pytest against {env['DATABASE_URL']} and {env['REDIS_URL']}")
    return subprocess.call([str(PY), "-m", "pytest", *args], cwd=ROOT, env=env)


def main() -> int:
    commands = {"demo": cmd_demo, "test": cmd_test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
