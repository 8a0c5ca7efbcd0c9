"""Outages raised outside a view (a middleware, as the session and auth middleware touch the
database) reach Django's handler500, which answers 503 too; other errors keep a 500 of the right
shape. The errors are real: a connection attempt to a port where nothing listens."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from django.db import connection
from django.db.backends.postgresql.base import DatabaseWrapper
from django.http import HttpRequest, HttpResponse
from django.test import Client
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.services import free_port

pytestmark = pytest.mark.django_db

OUTER = "tests.serving.test_outage_handler"


def _dead_database(request: HttpRequest) -> None:
    dead = DatabaseWrapper({**connection.settings_dict, "HOST": "127.0.0.1", "PORT": free_port()}, alias="dead")
    dead.ensure_connection()


def _dead_redis(request: HttpRequest) -> None:
    no_retry = Retry(NoBackoff(), 0)
    redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=no_retry).ping()


def _bug(request: HttpRequest) -> None:
    raise RuntimeError("a bug, not an outage")


FAILURES: dict[str, Callable[[HttpRequest], None]] = {"database": _dead_database, "redis": _dead_redis, "bug": _bug}


class FailingMiddleware:
    """Stands where SessionMiddleware and AuthenticationMiddleware stand; fails as the header says."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        FAILURES[request.headers["X-Fail"]](request)
        return self.get_response(request)


@pytest.fixture
def failing_stack(settings):  # type: ignore[no-untyped-def]
    stack = list(settings.MIDDLEWARE)
    stack.insert(stack.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1, f"{OUTER}.FailingMiddleware")
    settings.MIDDLEWARE = stack
    settings.DEBUG = False
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("source", ["database", "redis"])
def test_an_outage_in_a_middleware_answers_503_json_on_the_api(failing_stack, source):
    resp = failing_stack.get("/api/v1/runs/1", HTTP_X_FAIL=source)
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "service_unavailable"
    assert int(resp["Retry-After"]) >= 1


@pytest.mark.parametrize("source", ["database", "redis"])
def test_an_outage_in_a_middleware_answers_the_plain_page_in_the_console(failing_stack, source, django_assert_num_queries):
    with django_assert_num_queries(0):
        resp = failing_stack.get("/t/acme/", HTTP_X_FAIL=source)
    assert resp.status_code == 503
    assert "temporarily unavailable" in resp.content.decode()
    assert int(resp["Retry-After"]) >= 1


def test_a_bug_stays_a_500_json_on_the_api_and_a_page_in_the_console(failing_stack):
    resp = failing_stack.get("/api/v1/runs/1", HTTP_X_FAIL="bug")
    assert resp.status_code == 500 and resp.json()["error"]["type"] == "api_error"
    resp = failing_stack.get("/t/acme/", HTTP_X_FAIL="bug")
    assert resp.status_code == 500 and "Something went wrong" in resp.content.decode()
