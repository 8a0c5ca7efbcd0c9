"""The SSRF guard shared by every outbound request a tenant can aim: ``fetch_url`` and webhooks.

It sits below every app (tenants, budgets, the harness), so each can use it without reaching up a
floor. A URL passes only if:

1. it parses, has no credentials, uses ``http``/``https`` (and, unless the caller allows any
   port, the scheme's default port);
2. its host is a domain name or a canonical IP literal (``http://2130706433/``, ``http://0x7f.1/``,
   ``http://0177.0.0.1/`` are refused rather than guessed at);
3. every address the host resolves to is public: loopback, private, link-local (cloud metadata at
   169.254.169.254), multicast, reserved, unspecified, shared (CGNAT) and IPv6 forms embedding such
   an IPv4 (mapped, 6to4, Teredo, NAT64) are refused;
4. the connection goes to the vetted IP itself, with the original host in the ``Host`` header and as
   TLS SNI / certificate hostname, so a second DNS answer (rebinding) is never consulted.

Callers pass ``allow_networks`` only for an explicit, operator-set exemption (tests that run a
receiver on 127.0.0.1); it is empty everywhere else, and the checks above still run for any
address outside it. ``RESOLVER`` is a module attribute looked up at call time, so tests can point a
name at a test address while every check stays as it is.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048

# A last label that is all digits or hex can only be an IP in disguise: no TLD is numeric.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class GuardError(Exception):
    """Base of the guard's refusals; the message is safe to show the user who set the URL."""


class InvalidURL(GuardError):
    """Not a well-formed http(s) URL."""


class ForbiddenURL(GuardError):
    """Well-formed, but it may not be contacted (scheme, credentials, port, or a non-public address)."""


class UnresolvableHost(GuardError):
    """The name does not resolve (permanently, as far as DNS says)."""


class ResolveFailed(GuardError):
    """DNS failed in a way worth retrying."""


@dataclass(frozen=True)
class Target:
    """A vetted URL, split into what the connection needs."""

    url: str
    scheme: str
    host: str  # lower-case ASCII (IDNA), no trailing dot, no brackets
    port: int
    path: str  # path and query, percent-encoded, never empty
    is_ip_literal: bool

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    truncated: bool


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: ipaddress.IPv4Address | None = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip.teredo:
            embedded = ip.teredo[1]
        if embedded is None and any(ip in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            if inner:
                return f"{inner} (IPv4 {embedded} embedded in IPv6)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings (``127.0.0.1/32``, ``::1/128``) as networks; a bad entry raises ValueError."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _exempt(ip: IPAddress, allow_networks: tuple[IPNetwork, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in allow_networks)


def _check_ip(ip: IPAddress, allow_networks: tuple[IPNetwork, ...]) -> str | None:
    return None if _exempt(ip, allow_networks) else forbidden_reason(ip)


def parse_url(
    url: object, *, any_port: bool = False, allow_networks: tuple[IPNetwork, ...] = ()
) -> Target:
    """Parse and normalise ``url``; refuse anything that is not a plain http(s) URL to a sane host.

    No DNS here: cheap enough for form validation. :func:`resolve` does the rest.
    """
    if not isinstance(url, str) or not url:
        raise InvalidURL("url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidURL("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidURL("url is not a valid URL (bad host or port)")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = scheme[:20] or "(none)"
        raise ForbiddenURL(f"scheme {shown!r} is not allowed; only http and https URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        raise ForbiddenURL("URLs with credentials (user@host) are not allowed")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise InvalidURL("url has no host")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if not any_port and port != DEFAULT_PORTS[scheme]:
        raise ForbiddenURL(f"only the default port for {scheme} ({DEFAULT_PORTS[scheme]}) is allowed")
    if port == 0:
        raise InvalidURL("url is not a valid URL (bad host or port)")

    ip: IPAddress | None
    try:
        ip = ipaddress.ip_address(raw_host.split("%", 1)[0] if ":" in raw_host else raw_host)
    except ValueError:
        ip = None
    if ip is not None:
        if ":" in raw_host and "%" in raw_host:
            raise ForbiddenURL("IPv6 addresses with a zone id are not allowed")
        reason = _check_ip(ip, allow_networks)
        if reason:
            raise ForbiddenURL(f"address {ip} is {reason}")
        host = ip.compressed
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise InvalidURL("url host is not a valid domain name")
        labels = host.split(".")
        if _NUMERIC_LABEL.match(labels[-1]):
            raise ForbiddenURL(
                "url host looks like an IP address in a non-canonical form (decimal, octal or hex); refused"
            )
        if len(host) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            raise InvalidURL("url host is not a valid domain name")

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # Keep reserved characters and existing escapes; encode the rest (http.client sends ASCII only).
    path = quote(path, safe="/?&=:;@!$'()*+,~%-._[]")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, is_ip_literal=ip is not None)


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


# Injection point (see module docstring). Looked up at call time: ``netguard.RESOLVER = fake`` works.
RESOLVER: Callable[[str, int], list[str]] = system_resolve


def resolve(
    target: Target,
    *,
    resolver: Callable[[str, int], list[str]] | None = None,
    allow_networks: tuple[IPNetwork, ...] = (),
) -> list[str]:
    """The addresses to connect to; refuses the host if ANY of them is not public.

    Connect to one of these (:func:`pinned_request`), never to the name: a second lookup could
    answer differently.
    """
    if target.is_ip_literal:
        return [target.host]
    lookup = resolver if resolver is not None else RESOLVER
    try:
        addresses = lookup(target.host, target.port)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_AGAIN,):
            raise ResolveFailed(f"DNS lookup for {target.host} failed temporarily")
        raise UnresolvableHost(f"host {target.host} does not resolve")
    except OSError:
        raise ResolveFailed(f"DNS lookup for {target.host} failed")
    if not addresses:
        raise UnresolvableHost(f"host {target.host} does not resolve")
    vetted: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise ForbiddenURL(f"host {target.host} resolved to an unparseable address")
        reason = _check_ip(ip, allow_networks)
        if reason:
            raise ForbiddenURL(f"host {target.host} resolves to {ip}, which is {reason}; refused")
        vetted.append(ip.compressed)
    return vetted


def pinned_request(
    target: Target,
    ip: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float,
    max_bytes: int,
) -> RawResponse:
    """Send one request for ``target`` by connecting to ``ip``; the target's host goes in ``Host`` and TLS SNI.

    Redirects are not followed (a caller that follows them vets the next hop from scratch).
    """
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(
            target.host, ip, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(ip, target.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        conn.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Connection", "close")
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        # A per-read timeout alone lets a slow-drip server hold the worker; keep an overall deadline.
        while size <= max_bytes:
            if time.monotonic() > deadline:
                raise TimeoutError("response body took longer than the timeout")
            chunk = resp.read(min(65_536, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
        response_headers = {name.lower(): value for name, value in resp.getheaders()}
        return RawResponse(
            status=resp.status, headers=response_headers, body=data[:max_bytes], truncated=len(data) > max_bytes
        )
    finally:
        conn.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, ip: str, port: int, *, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._pinned_ip = ip
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._pinned_ip, self.port), self.timeout)
        # Certificate and SNI are checked against the name, while the TCP peer is the vetted IP.
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
