"""fetch_url's SSRF defences.

Content comes from a real HTTP server on 127.0.0.1. The test swaps only the two injection points in
``agentops.tools.net``: the resolver (maps test names to addresses) and the opener (records the
vetted address it was given, then connects to the local server instead). Every check (scheme,
allow-list, IP forms, resolved addresses, redirects) runs unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentops.tools import net
from agentops.tools.registry import ToolContext, ToolPermissionError, execute, get_tool, validate_arguments

PUBLIC_IP = "93.184.215.14"
ALLOW = {"domains": ["docs.example.com"]}

FAKE_DNS = {
    "docs.example.com": [PUBLIC_IP],
    "api.docs.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "internal.docs.example.com": ["10.0.0.5"],
    "metadata.docs.example.com": ["169.254.169.254"],
    "rebind.docs.example.com": ["93.184.215.15", "127.0.0.1"],
    "mapped.docs.example.com": ["::ffff:127.0.0.1"],
    "cgnat.docs.example.com": ["100.64.0.1"],
    "linklocal6.docs.example.com": ["fe80::1"],
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        routes = {
            "/redirect-loopback": "http://127.0.0.1/secret",
            "/redirect-internal": "http://internal.docs.example.com/secret",
            "/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
            "/redirect-file": "file:///etc/passwd",
            "/redirect-ok": "/",
            "/loop": "/loop",
        }
        if self.path in routes:
            self.send_response(302)
            self.send_header("Location", routes[self.path])
            self.end_headers()
            return
        if self.path == "/big":
            payload = b"a" * (300 * 1024)
        elif self.path == "/secret":
            payload = b"INTERNAL SECRET"
        else:
            payload = f"<h1>Docs</h1> host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def wired(server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Install the fake resolver and the local opener; returns the (host, ip) of every connection."""
    connections: list[tuple[str, str]] = []

    def resolver(host: str, port: int) -> list[str]:
        if host not in FAKE_DNS:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return FAKE_DNS[host]

    def opener(target: net.Target, ip: str, *, timeout: float, max_bytes: int) -> net.RawResponse:
        connections.append((target.host, ip))
        local = dataclasses.replace(target, port=server.server_address[1])
        return net.pinned_open(local, "127.0.0.1", timeout=timeout, max_bytes=max_bytes)

    monkeypatch.setattr(net, "RESOLVER", resolver)
    monkeypatch.setattr(net, "OPENER", opener)
    return connections


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The real resolver, and an opener that records any attempt to connect (there must be none)."""
    attempts: list[str] = []

    def opener(target: net.Target, ip: str, **kwargs: Any) -> net.RawResponse:
        attempts.append(ip)
        raise AssertionError("a refused URL must never be connected to")

    monkeypatch.setattr(net, "OPENER", opener)
    return attempts


def fetch(url: str, allow: dict[str, Any] | None = None) -> Any:
    ctx = ToolContext(
        tenant_id=1, run_id=1, agent_id=1, tool_use_id="toolu_fetch", allow=ALLOW if allow is None else allow
    )
    return execute(get_tool("fetch_url"), ctx, {"url": url}, max_attempts=1)


def error(outcome: Any) -> dict[str, str]:
    assert outcome.is_error, outcome.content
    return json.loads(outcome.content)["error"]


def test_an_allowed_host_returns_content_over_the_vetted_address(wired: list[tuple[str, str]]) -> None:
    outcome = fetch("http://docs.example.com/guide?x=1")
    assert not outcome.is_error, outcome.content
    result = json.loads(outcome.content)
    assert result["status"] == 200
    assert result["content_type"].startswith("text/html")
    assert "<h1>Docs</h1>" in result["text"]
    # The Host header names the site, while the connection went to the address that was checked.
    assert "host=docs.example.com" in result["text"]
    assert wired == [("docs.example.com", PUBLIC_IP)]


def test_a_subdomain_of_an_allowed_domain_is_allowed(wired: list[tuple[str, str]]) -> None:
    assert not fetch("http://api.docs.example.com/").is_error
    assert wired[0][1] == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1/", ["127.0.0.1"]),
        ("http://localhost/", ["localhost"]),
        ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254"]),
        ("http://[::1]/", ["::1"]),
        ("http://[::ffff:127.0.0.1]/", ["::ffff:7f00:1"]),
        ("http://[::ffff:a9fe:a9fe]/", ["::ffff:a9fe:a9fe"]),
        ("http://[fe80::1]/", ["fe80::1"]),
        ("http://0.0.0.0/", ["0.0.0.0"]),
        ("http://10.1.2.3/", ["10.1.2.3"]),
        ("http://192.168.1.1/", ["192.168.1.1"]),
        ("http://2130706433/", ["2130706433"]),
        ("http://0x7f.1/", ["0x7f.1"]),
        ("http://0x7f000001/", ["0x7f000001"]),
        ("http://0177.0.0.1/", ["0177.0.0.1"]),
        ("http://127.1/", ["127.1"]),
    ],
)
def test_internal_addresses_are_refused_even_when_allow_listed(
    url: str, allowed: list[str], no_connections: list[str]
) -> None:
    err = error(fetch(url, {"domains": allowed}))
    assert err["type"] == "permission_denied"
    assert no_connections == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://docs.example.com/_SET",
        "ftp://docs.example.com/",
        "dict://docs.example.com:11211/",
        "docs.example.com/x",
    ],
)
def test_non_http_schemes_are_refused(url: str, no_connections: list[str]) -> None:
    err = error(fetch(url))
    assert err["type"] == "permission_denied" and "scheme" in err["message"]
    assert no_connections == []


@pytest.mark.parametrize(
    "url",
    [
        "http://evil.example.net/",
        "http://docs.example.com.evil.net/",
        "http://evildocs.example.com/",
        "http://example.com/",
        "http://docs.example.com@127.0.0.1/",
        "http://user:pw@docs.example.com/",
        "http://docs.example.com:8080/",
        "https://docs.example.com:22/",
    ],
)
def test_hosts_outside_the_allow_list_credentials_and_odd_ports_are_refused(
    url: str, no_connections: list[str]
) -> None:
    assert error(fetch(url))["type"] == "permission_denied"
    assert no_connections == []


def test_an_empty_or_missing_allow_list_refuses_everything(no_connections: list[str]) -> None:
    assert "allows no domains" in error(fetch("http://docs.example.com/", {}))["message"]
    assert "allows no domains" in error(fetch("http://docs.example.com/", {"domains": []}))["message"]
    assert no_connections == []


def test_validation_refuses_before_any_network_activity() -> None:
    with pytest.raises(ToolPermissionError):
        validate_arguments(get_tool("fetch_url"), {"url": "http://evil.example.net/"}, ALLOW)
    with pytest.raises(ToolPermissionError):
        validate_arguments(get_tool("fetch_url"), {"url": "http://0x7f.1/"}, {"domains": ["0x7f.1"]})


@pytest.mark.parametrize(
    "host",
    [
        "internal.docs.example.com",
        "metadata.docs.example.com",
        "rebind.docs.example.com",
        "mapped.docs.example.com",
        "cgnat.docs.example.com",
        "linklocal6.docs.example.com",
    ],
)
def test_a_name_resolving_to_any_internal_address_is_refused(host: str, wired: list[tuple[str, str]]) -> None:
    err = error(fetch(f"http://{host}/"))
    assert err["type"] == "permission_denied" and "resolves to" in err["message"]
    assert wired == []


def test_a_redirect_to_loopback_is_refused(wired: list[tuple[str, str]]) -> None:
    err = error(
        fetch("http://docs.example.com/redirect-loopback", {"domains": ["docs.example.com", "127.0.0.1"]})
    )
    assert err["type"] == "permission_denied" and "loopback" in err["message"]
    assert wired == [("docs.example.com", PUBLIC_IP)]


def test_a_redirect_outside_the_allow_list_is_refused(wired: list[tuple[str, str]]) -> None:
    assert error(fetch("http://docs.example.com/redirect-loopback"))["type"] == "permission_denied"
    assert len(wired) == 1


def test_a_redirect_to_an_allowed_name_with_an_internal_address_is_refused(
    wired: list[tuple[str, str]],
) -> None:
    err = error(fetch("http://docs.example.com/redirect-internal"))
    assert "10.0.0.5" in err["message"] and "private" in err["message"]
    assert len(wired) == 1


def test_redirects_to_metadata_and_file_are_refused(wired: list[tuple[str, str]]) -> None:
    assert error(
        fetch(
            "http://docs.example.com/redirect-metadata", {"domains": ["docs.example.com", "169.254.169.254"]}
        )
    )
    assert "scheme" in error(fetch("http://docs.example.com/redirect-file"))["message"]


def test_a_safe_redirect_is_followed_and_reported(wired: list[tuple[str, str]]) -> None:
    result = json.loads(fetch("http://docs.example.com/redirect-ok").content)
    assert result["status"] == 200 and result["url"] == "http://docs.example.com/"
    assert result["redirected_from"] == ["http://docs.example.com/redirect-ok"]


def test_redirects_are_capped(wired: list[tuple[str, str]]) -> None:
    err = error(fetch("http://docs.example.com/loop"))
    assert err["type"] == "validation_error" and "too many redirects" in err["message"]
    assert len(wired) == net.MAX_REDIRECTS + 1


def test_a_large_body_is_capped_and_its_text_truncated_with_a_note(wired: list[tuple[str, str]]) -> None:
    result = json.loads(fetch("http://docs.example.com/big").content)
    assert result["body_truncated_at_bytes"] == net.MAX_BYTES
    assert result["text"].endswith(f"[truncated: {net.MAX_TEXT_CHARS} of {net.MAX_BYTES} characters shown]")


def test_an_unknown_name_is_not_found(wired: list[tuple[str, str]]) -> None:
    assert error(fetch("http://nowhere.docs.example.com/"))["type"] == "not_found"


def test_a_connection_failure_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "RESOLVER", lambda host, port: [PUBLIC_IP])

    def refused(target: net.Target, ip: str, **kwargs: Any) -> net.RawResponse:
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(net, "OPENER", refused)
    ctx = ToolContext(tenant_id=1, run_id=1, agent_id=1, tool_use_id="t", allow=ALLOW)
    outcome = execute(
        get_tool("fetch_url"), ctx, {"url": "https://docs.example.com/"}, max_attempts=2, backoff_s=0.001
    )
    assert outcome.error_class == "transient_error" and outcome.attempts == 2
