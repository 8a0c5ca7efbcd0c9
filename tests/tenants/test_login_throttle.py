"""Login brute force: failures are counted per account and per address; lockouts end by themselves.

The clock is frozen and travelled (time-machine), never slept: the cool-off is measured against
``django.utils.timezone.now()``, which is what django-axes reads.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client

from tenants.models import Role
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _limits(settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=10)


def _post(username: str, password: str, ip: str = "203.0.113.7", **extra):  # type: ignore[no-untyped-def]
    return Client(REMOTE_ADDR=ip, **extra).post("/login/", {"username": username, "password": password})


def _logged_in(resp) -> bool:  # type: ignore[no-untyped-def]
    return resp.status_code == 302 and resp.wsgi_request.user.is_authenticated


def test_an_account_locks_after_the_configured_attempts_and_recovers_after_the_cool_off(members):
    user = members[Role.OPERATOR]
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(2):
            resp = _post(user.username, "wrong")
            assert resp.status_code == 200 and b"did not match" in resp.content
        resp = _post(user.username, "wrong")  # the third failure: locked
        assert resp.status_code == 429 and b"Too many failed logins" in resp.content
        # Locked means locked: the right password from anywhere is refused as well.
        assert _post(user.username, PASSWORD).status_code == 429
        assert _post(user.username, PASSWORD, ip="198.51.100.9").status_code == 429
        clock.shift(timedelta(minutes=9, seconds=59))
        assert _post(user.username, PASSWORD, ip="198.51.100.9").status_code == 429
        clock.shift(timedelta(seconds=2))
        resp = _post(user.username, PASSWORD)
        assert _logged_in(resp)
        # Success resets the count: two more failures do not lock again.
        assert _post(user.username, "wrong").status_code == 200
        assert _post(user.username, "wrong").status_code == 200
        assert _logged_in(_post(user.username, PASSWORD))


def test_an_address_locks_after_failures_across_accounts(members):
    with time_machine.travel(START, tick=False) as clock:
        for name in ("acme-admin", "acme-viewer", "nobody-at-all"):
            _post(name, "wrong", ip="192.0.2.44")
        # A fourth account from the same address, with its right password: refused.
        assert _post(members[Role.FINANCE].username, PASSWORD, ip="192.0.2.44").status_code == 429
        # The same account from another address is fine: it had no failures of its own.
        assert _logged_in(_post(members[Role.FINANCE].username, PASSWORD, ip="192.0.2.45"))
        clock.shift(timedelta(minutes=11))
        assert _logged_in(_post(members[Role.FINANCE].username, PASSWORD, ip="192.0.2.44"))


def test_fifty_wrong_passwords_are_not_all_answered(members):
    with time_machine.travel(START, tick=False):
        codes = [_post("acme-admin", f"guess-{i}", ip=f"198.51.100.{i}").status_code for i in range(50)]
    assert codes[:2] == [200, 200] and set(codes[2:]) == {429}


def test_the_admin_login_is_throttled_too(db):
    staff = UserFactory(username="ops-staff", is_staff=True, is_superuser=True)
    with time_machine.travel(START, tick=False):
        client = Client(REMOTE_ADDR="203.0.113.99")
        for _ in range(3):
            client.post("/admin/login/", {"username": staff.username, "password": "wrong"})
        resp = client.post("/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD})
    assert resp.status_code == 429


def test_behind_the_tls_proxy_the_address_is_the_one_the_proxy_saw(settings, members):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    with time_machine.travel(START, tick=False):
        # Every request arrives from the proxy (127.0.0.1); the client's own claims come first.
        for i in range(3):
            _post("acme-admin", "wrong", ip="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.50")
        assert AccessAttempt.objects.filter(ip_address="203.0.113.50").exists()
        assert not AccessAttempt.objects.filter(ip_address="127.0.0.1").exists()
        # Another client behind the same proxy is not locked out with the attacker.
        assert _logged_in(_post(members[Role.VIEWER].username, PASSWORD, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.3"))


def test_staff_see_lockouts_in_the_admin_and_members_do_not(members):
    staff = UserFactory(username="platform-staff", is_staff=True, is_superuser=True)
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            _post("acme-viewer", "wrong", ip="203.0.113.8")
        resp = login(staff).get("/admin/axes/accessattempt/")
        assert resp.status_code == 200
        assert b"acme-viewer" in resp.content and b"203.0.113.8" in resp.content
        assert login(members[Role.ADMIN]).get("/admin/axes/accessattempt/").status_code == 302  # to the admin login
        # Deleting the attempt (what staff do in the admin) lifts the lockout at once.
        AccessAttempt.objects.filter(username="acme-viewer").delete()
        assert _logged_in(_post("acme-viewer", PASSWORD, ip="203.0.113.8"))


def test_a_huge_username_is_counted_not_a_500(members):
    with time_machine.travel(START, tick=False):
        codes = [_post("x" * 10_000, "y", ip="203.0.113.12").status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]
    assert AccessAttempt.objects.get(ip_address="203.0.113.12").username == "x" * 255


def test_test_client_logins_still_work(members):
    # authenticate() without a request (the test client, a shell) is not throttled and not refused.
    client = Client()
    assert client.login(username=members[Role.ADMIN].username, password=PASSWORD)
    assert not Client().login(username=members[Role.ADMIN].username, password="wrong")
    assert get_user_model().objects.filter(username=members[Role.ADMIN].username).exists()


def test_limits_come_from_the_environment():
    root = Path(__file__).resolve().parents[2]
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'agentops.settings'; django.setup(); "
        "from django.conf import settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds())"
    )
    env = {"PATH": "/usr/bin:/bin", "LOGIN_FAILURE_LIMIT": "7", "LOGIN_COOLOFF_MINUTES": "45", "DATABASE_URL": "sqlite:///:memory:"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["7", "2700.0"]
