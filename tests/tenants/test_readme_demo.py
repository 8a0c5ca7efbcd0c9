"""The README's two commands work: the Quick start block holds exactly them, and the demo, run for
real in its own process group (a temp SQLite file, a free port, its own Redis db), prints logins
that reach each tenant's home page over HTTP, twice in a row without duplicates."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def quick_start_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "README.md has no '## Quick start' section"
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", match.group(1), re.S | re.M)
    return [[lang, *[ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]] for lang, body in blocks]


def test_the_readme_quick_start_is_one_sh_block_with_the_two_commands():
    assert quick_start_blocks() == [["sh", "python3 dev.py demo", "python3 dev.py test"]]


def test_the_readme_starts_with_the_title_and_a_description():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# AgentOps")
    first_heading = next(i for i, ln in enumerate(lines[1:], 1) if ln.startswith("## "))
    assert lines[first_heading] == "## Quick start"
    assert any(ln.strip() for ln in lines[1:first_heading])


def test_the_readme_documents_every_setting_read_from_the_environment():
    names = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', (ROOT / "agentops" / "settings.py").read_text()))
    assert len(names) > 10
    readme = (ROOT / "README.md").read_text()
    assert sorted(n for n in names if f"`{n}`" not in readme) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo_redis_url() -> str:
    """A Redis db of the demo's own: not the suite's, and empty (no other demo test is using it)."""
    own = redis.Redis.from_url(settings.REDIS_URL).connection_pool.connection_kwargs.get("db", 0)
    for db in range(14, 7, -1):
        url = urllib.parse.urlsplit(settings.REDIS_URL)._replace(path=f"/{db}").geturl()
        if db != own and redis.Redis.from_url(url).dbsize() == 0:
            return url
    pytest.fail("No empty Redis db in 8-14 for the demo test")


class Output:
    """Collects a process's output lines in a thread, so reading never blocks the test."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for_block(self, proc: subprocess.Popen[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"^AgentOps demo is running at .*?^={20,}$", self.text, re.S | re.M)
            if match:
                return match.group(0)
            if proc.poll() is not None:
                time.sleep(0.5)
                pytest.fail(f"demo exited with {proc.returncode}:\n{self.text}")
            time.sleep(0.2)
        pytest.fail(f"demo printed no login block within {timeout} s:\n{self.text}")


def parse_block(block: str) -> dict:  # type: ignore[type-arg]
    url = re.search(r"running at (http://\S+?)/?\s", block).group(1)  # type: ignore[union-attr]
    password = re.search(r"Password for every login below: (\S+)", block).group(1)  # type: ignore[union-attr]
    tenants: dict[str, dict] = {}  # type: ignore[type-arg]
    for section in re.split(r"\n\s*\n", block):
        home = re.search(r"^(.+?) \((\w+) tier\)\s+(http://\S+/t/([\w-]+)/)$", section, re.M)
        if not home:
            continue
        tenants[home.group(4)] = {
            "name": home.group(1), "tier": home.group(2), "home": home.group(3),
            "logins": dict(re.findall(r"login: (\S+)\s+role: (\S+)", section)),
            "key": re.search(r"API key: (aok_\S+)", section).group(1),  # type: ignore[union-attr]
        }
    return {"url": url, "password": password, "tenants": tenants}


def login_and_open(base: str, username: str, password: str, path: str) -> tuple[int, str, str]:
    """Log in through the real login form (CSRF cookie and token included); return the page at ``path``."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{base}/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token}).encode()
    request = urllib.request.Request(f"{base}/login/", data=data, headers={"Referer": f"{base}/login/"})
    landed = opener.open(request, timeout=10)
    page = opener.open(f"{base}{path}", timeout=10)
    return page.status, page.read().decode(), landed.url


def _stop(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Workers and the web server are in the same group and go with it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_demo_runs_twice_and_its_printed_logins_reach_the_tenant_home(tmp_path):
    port, redis_url = _free_port(), _demo_redis_url()
    db_file = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DJANGO_"))}
    env.update({"DATABASE_URL": f"sqlite:///{db_file}", "REDIS_URL": redis_url, "PORT": str(port), "PYTHONUNBUFFERED": "1", "DEBUG": "0"})
    demo_redis = redis.Redis.from_url(redis_url)
    try:
        # First run: seed only. The second run below must neither crash nor duplicate anything.
        first = subprocess.run([*MANAGE, "demo", "--no-serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stdout + first.stderr
        first_keys = set(re.findall(r"API key: (aok_\S+)", first.stdout))
        assert len(first_keys) == 3

        proc = subprocess.Popen([*MANAGE, "demo"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            out = Output(proc)
            demo = parse_block(out.wait_for_block(proc, timeout=180))
            assert demo["url"] == f"http://127.0.0.1:{port}"
            assert "rqworker processes" in out.text  # Redis answers here, so real workers run
            assert len(demo["tenants"]) == 3
            assert len({t["tier"] for t in demo["tenants"].values()}) == 3  # three different tiers
            for slug, t in demo["tenants"].items():
                assert sorted(t["logins"].values()) == sorted(["admin", "operator", "prompt_editor", "finance", "viewer"])
                assert t["key"] not in first_keys  # a fresh key each run
                for username, role in t["logins"].items():
                    if role not in ("admin", "viewer"):
                        continue
                    status, body, landed = login_and_open(demo["url"], username, demo["password"], f"/t/{slug}/")
                    assert status == 200 and landed == t["home"], (username, landed)
                    assert t["name"].replace("&", "&amp;") in body and username in body
            # Real rqworker processes registered with the demo's Redis.
            from rq import Worker

            assert len(Worker.all(connection=demo_redis)) == 2
        finally:
            _stop(proc)

        with sqlite3.connect(db_file) as db:
            assert db.execute("select count(*) from tenants_tenant").fetchone()[0] == 3
            assert db.execute("select count(*) from tenants_tier").fetchone()[0] == 3
            assert db.execute("select count(*) from auth_user").fetchone()[0] == 3 * 5 + 2  # + platform, consultant
            assert db.execute("select count(*) from tenants_membership").fetchone()[0] == 3 * 5 + 3
            per_tenant = db.execute(
                "select tenant_id, sum(revoked_at is null), count(*) from tenants_apikey group by tenant_id"
            ).fetchall()
            assert [(active, total) for _, active, total in per_tenant] == [(1, 2)] * 3  # new key + the one it replaced
    finally:
        demo_redis.flushdb()
