"""SSRF-safe HTTP GET for the ``fetch_url`` tool.

Every hop (the first request and each redirect) goes through the same checks, those of
:mod:`agentops.netguard` (shared with webhook delivery) plus the grant's allow-list:

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
import re
import ssl
from collections.abc import Callable, Iterable
from urllib.parse import urljoin

from agentops import netguard
from agentops.netguard import DEFAULT_PORTS, RawResponse, Target, forbidden_reason, system_resolve
from agentops.tools.errors import (
    ToolError,
    ToolNotFoundError,
    ToolPermissionError,
    ToolValidationError,
    TransientToolError,
)
from agentops.tools.output import truncate_output

__all__ = ["DEFAULT_PORTS", "RawResponse", "Target", "fetch", "forbidden_reason", "parse_url", "vet_url"]

MAX_URL_LENGTH = netguard.MAX_URL_LENGTH
MAX_REDIRECTS = 3
MAX_BYTES = 256 * 1024
MAX_TEXT_CHARS = 12_000
TIMEOUT_S = 10.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "AgentOps-fetch_url/1.0"

_TEXTUAL_MIME = frozenset(
    {"application/json", "application/xml", "application/xhtml+xml", "application/javascript"}
)


def _as_tool_error(exc: netguard.GuardError) -> ToolError:
    message = str(exc)
    if isinstance(exc, netguard.InvalidURL):
        return ToolValidationError(message)
    if isinstance(exc, netguard.UnresolvableHost):
        return ToolNotFoundError(message)
    if isinstance(exc, netguard.ResolveFailed):
        return TransientToolError(message)
    return ToolPermissionError(message)


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
    try:
        return netguard.parse_url(url)
    except netguard.GuardError as exc:
        raise _as_tool_error(exc)


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


def pinned_open(target: Target, ip: str, *, timeout: float, max_bytes: int) -> RawResponse:
    """GET ``target`` by connecting to ``ip``; the target's host goes in ``Host`` and TLS SNI."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html, text/plain, application/json, */*;q=0.5"}
    return netguard.pinned_request(target, ip, method="GET", headers=headers, timeout=timeout, max_bytes=max_bytes)


# Injection points (see module docstring). Looked up at call time: ``net.RESOLVER = fake`` works.
RESOLVER: Callable[[str, int], list[str]] = system_resolve
OPENER: Callable[..., RawResponse] = pinned_open


def vetted_addresses(target: Target) -> list[str]:
    """The addresses to connect to; refuses the host if ANY of them is not public."""
    try:
        return netguard.resolve(target, resolver=RESOLVER)
    except netguard.GuardError as exc:
        raise _as_tool_error(exc)


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
