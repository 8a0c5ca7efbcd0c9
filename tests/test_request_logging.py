"""403 and 404 are logged as one line without a traceback: any member can cause them at will, so a
traceback each would let them flood the log. A 500 keeps its traceback."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from agentops.logs import JsonFormatter
from tenants.models import Role

pytestmark = pytest.mark.django_db


def _request_records(caplog):  # type: ignore[no-untyped-def]
    return [r for r in caplog.records if r.name == "django.request"]


def _assert_one_line(record, status):  # type: ignore[no-untyped-def]
    assert record.exc_info is None and record.exc_text is None
    assert record.levelno in (logging.INFO, logging.WARNING)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "Traceback" not in line
    payload = json.loads(line)
    assert payload["status"] == status and "exc" not in payload


def test_a_403_is_one_line(members, client_for, caplog):
    viewer = client_for(members[Role.VIEWER])
    with caplog.at_level(logging.INFO, logger="django.request"):
        resp = viewer.get("/t/acme/members/")
    assert resp.status_code == 403
    records = _request_records(caplog)
    assert len(records) == 1 and "Forbidden" in records[0].getMessage()
    _assert_one_line(records[0], 403)


def test_a_404_is_one_line(members, outsider, client_for, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        assert client_for(outsider).get("/t/acme/members/").status_code == 404
        assert client_for(members[Role.ADMIN]).get("/t/acme/runs/999999/").status_code == 404
    records = _request_records(caplog)
    assert len(records) == 2
    for record in records:
        _assert_one_line(record, 404)


def test_a_server_error_keeps_its_traceback():
    from agentops.logs import ClientErrorFilter

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s", ("/x",), exc_info)
    record.status_code = 500
    assert ClientErrorFilter().filter(record) and record.exc_info is exc_info
    assert "Traceback" in json.loads(JsonFormatter().format(record))["exc"]
    # Django's security loggers (django.security.*, a 400) pass the handler's filter as one line too.
    record = logging.LogRecord("django.security.DisallowedHost", logging.ERROR, __file__, 1, "Invalid host", (), exc_info)
    record.status_code = 400
    assert ClientErrorFilter().filter(record) and record.exc_info is None
