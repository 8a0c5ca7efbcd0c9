"""SSRF-safe HTTP GET for the ``fetch_url`` tool.

Every hop (the first request and each redirect) goes through the same checks:

1. the URL parses, has no credentials, uses ``http``/``https`` on the scheme's default port;
2. the host is a domain name or a canonical IP literal (``http://2130706433/``, ``http://0x7f.1/``,
   ``http://0177.0.0.1/`` are refused rather than guessed at);
3. the host is in the grant's ``allow["domains"]`` (exact or subdomain match; empty refuses all);
4. every address the host resolves to is public: loopback, private, link-local (cloud metadata at
   169.254.169.254), multicast, reserved, unspecified, shared (CGNAT) and IPv6 forms embedding such
   an IPv4 (mapped, 6to4, Teredo, NAT64) are refused;
5. the connection goes to the vetted IP itself, with the original host in the ``Host`` header and as
   TLS SNI / certificate hostname, so a second DNS answer (rebinding) is never consulted.

``RESOLVER`` and ``OPENER`` are module attributes looked up at call time, so tests can point a name
at a test address and connect to a local server while the checks above stay exactly as they are.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, urljoin, urlsplit

from agentops.tools.errors import (
    ToolError,
    ToolNotFoundError,
    ToolPermissionError,
    ToolValidationError,
    TransientToolError,
)
from agentops.tools.output import truncate_output

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 2048
MAX_REDIRECTS = 3
MAX_BYTES = 256 * 1024
MAX_TEXT_CHARS = 12_000
TIMEOUT_S = 10.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "AgentOps-fetch_url/1.0"

# A last label that is all digits or hex can only be an IP in disguise: no TLD is numeric.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_DNS_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_TEXTUAL_MIME = frozenset(
    {"application/json", "application/xml", "application/xhtml+xml", "application/javascript"}
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


def normalise_domains(domains: object) -> tuple[str, ...]:
    """Allow-list entries as lower-case names; ``*.example.com`` and ``.example.com`` mean the same."""
    if isinstance(domains, str):
        domains = [domains]
    if not isinstance(domains, list | tuple):
        return ()
    out: list[str] = []
    for entry in domains:
        if not isinstance(entry, str):
            continue
        name = entry.strip().lower().rstrip(".")
        name = name.removeprefix("*.").lstrip(".")
        if name:
            out.append(name)
    return tuple(out)


def host_allowed(host: str, domains: Iterable[str], *, is_ip_literal: bool = False) -> bool:
    for domain in domains:
        if host == domain:
            return True
        # Suffix matching on an IP literal would let "3.4" admit "1.2.3.4".
        if not is_ip_literal and host.endswith("." + domain):
            return True
    return False


def parse_url(url: object) -> Target:
    """Parse and normalise ``url``; refuse anything that is not a plain http(s) URL to a sane host."""
    if not isinstance(url, str) or not url:
        raise ToolValidationError("url must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise ToolValidationError(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ToolValidationError("url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ToolValidationError("url is not a valid URL (bad host or port)")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        shown = scheme[:20] or "(none)"
        raise ToolPermissionError(f"scheme {shown!r} is not allowed; only http and https URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        raise ToolPermissionError("URLs with credentials (user@host) are not allowed")
    raw_host = (parts.hostname or "").rstrip(".")
    if not raw_host:
        raise ToolValidationError("url has no host")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    if port != DEFAULT_PORTS[scheme]:
        raise ToolPermissionError(f"only the default port for {scheme} ({DEFAULT_PORTS[scheme]}) is allowed")

    ip: IPAddress | None
    try:
        ip = ipaddress.ip_address(raw_host.split("%", 1)[0] if ":" in raw_host else raw_host)
    except ValueError:
        ip = None
    if ip is not None:
        if ":" in raw_host and "%" in raw_host:
            raise ToolPermissionError("IPv6 addresses with a zone id are not allowed")
        reason = forbidden_reason(ip)
        if reason:
            raise ToolPermissionError(f"address {ip} is {reason}")
        host = ip.compressed
    else:
        try:
            host = raw_host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ToolValidationError("url host is not a valid domain name")
        labels = host.split(".")
        if _NUMERIC_LABEL.match(labels[-1]):
            raise ToolPermissionError(
                "url host looks like an IP address in a non-canonical form (decimal, octal or hex); refused"
            )
        if len(host) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            raise ToolValidationError("url host is not a valid domain name")

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    # Keep reserved characters and existing escapes; encode the rest (http.client sends ASCII only).
    path = quote(path, safe="/?&=:;@!$'()*+,~%-._[]")
    return Target(url=url, scheme=scheme, host=host, port=port, path=path, is_ip_literal=ip is not None)


def vet_url(url: object, domains: object) -> Target:
    """Parse ``url`` and check it against the allow-list. No DNS: cheap enough for validation."""
    allowed = normalise_domains(domains)
    if not allowed:
        raise ToolPermissionError(
            "this tool grant allows no domains (allow.domains is empty), so no URL can be fetched"
        )
    target = parse_url(url)
    if not host_allowed(target.host, allowed, is_ip_literal=target.is_ip_literal):
        raise ToolPermissionError(f"host {target.host[:100]!r} is not in the grant's allowed domains")
    return target


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def pinned_open(target: Target, ip: str, *, timeout: float, max_bytes: int) -> RawResponse:
    """GET ``target`` by connecting to ``ip``; the target's host goes in ``Host`` and TLS SNI."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(
            target.host, ip, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(ip, target.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", target.host_header)
        conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Accept", "text/html, text/plain, application/json, */*;q=0.5")
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Connection", "close")
        conn.endheaders()
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
        body = b"".join(chunks)
        headers = {name.lower(): value for name, value in resp.getheaders()}
        return RawResponse(
            status=resp.status, headers=headers, body=body[:max_bytes], truncated=len(body) > max_bytes
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


# Injection points (see module docstring). Looked up at call time: ``net.RESOLVER = fake`` works.
RESOLVER: Callable[[str, int], list[str]] = system_resolve
OPENER: Callable[..., RawResponse] = pinned_open


def vetted_addresses(target: Target) -> list[str]:
    """The addresses to connect to; refuses the host if ANY of them is not public."""
    if target.is_ip_literal:
        return [target.host]
    try:
        addresses = RESOLVER(target.host, target.port)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_AGAIN,):
            raise TransientToolError(f"DNS lookup for {target.host} failed temporarily")
        raise ToolNotFoundError(f"host {target.host} does not resolve")
    except OSError:
        raise TransientToolError(f"DNS lookup for {target.host} failed")
    if not addresses:
        raise ToolNotFoundError(f"host {target.host} does not resolve")
    vetted: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise ToolPermissionError(f"host {target.host} resolved to an unparseable address")
        reason = forbidden_reason(ip)
        if reason:
            raise ToolPermissionError(f"host {target.host} resolves to {ip}, which is {reason}; refused")
        vetted.append(ip.compressed)
    return vetted


def _open(target: Target, ip: str, *, timeout: float, max_bytes: int) -> RawResponse:
    try:
        return OPENER(target, ip, timeout=timeout, max_bytes=max_bytes)
    except ssl.SSLCertVerificationError:
        raise ToolError(f"TLS certificate verification failed for {target.host}")
    except ToolError:
        raise
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        raise TransientToolError(f"fetching {target.host} failed: {type(exc).__name__}")


def _decode_text(raw: RawResponse) -> tuple[str, str]:
    content_type = raw.headers.get("content-type", "")
    mime = content_type.split(";", 1)[0].strip().lower()
    textual = (
        not mime
        or mime.startswith("text/")
        or mime in _TEXTUAL_MIME
        or mime.endswith("+json")
        or mime.endswith("+xml")
    )
    if not textual:
        return content_type, f"[binary content of type {mime[:100]} omitted: {len(raw.body)} bytes]"
    match = re.search(r"charset=[\"']?([A-Za-z0-9._-]+)", content_type)
    charset = match.group(1) if match else "utf-8"
    try:
        text = raw.body.decode(charset, errors="replace")
    except LookupError:
        text = raw.body.decode("utf-8", errors="replace")
    return content_type, text


def fetch(
    url: str,
    domains: object,
    *,
    max_redirects: int = MAX_REDIRECTS,
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT_S,
    max_text_chars: int = MAX_TEXT_CHARS,
) -> dict[str, object]:
    """GET ``url`` under the checks in the module docstring, following up to ``max_redirects``."""
    current = url
    hops: list[str] = []
    for hop in range(max_redirects + 1):
        target = vet_url(current, domains)
        addresses = vetted_addresses(target)
        raw = _open(target, addresses[0], timeout=timeout, max_bytes=max_bytes)
        location = raw.headers.get("location")
        if raw.status in REDIRECT_STATUSES and location:
            if hop == max_redirects:
                raise ToolValidationError(f"too many redirects (more than {max_redirects})")
            hops.append(current)
            # The next hop is vetted from scratch at the top of the loop.
            current = urljoin(target.url, location.strip())
            continue
        if raw.status in RETRYABLE_STATUSES:
            raise TransientToolError(f"{target.host} answered HTTP {raw.status}")
        content_type, text = _decode_text(raw)
        result: dict[str, object] = {
            "url": current,
            "status": raw.status,
            "content_type": content_type,
            "text": truncate_output(text, max_text_chars),
        }
        if raw.truncated:
            result["body_truncated_at_bytes"] = max_bytes
        if hops:
            result["redirected_from"] = hops
        return result
    raise ToolValidationError(f"too many redirects (more than {max_redirects})")  # pragma: no cover
