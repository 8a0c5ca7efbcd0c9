"""What ``manage.py demo`` hands to every step in ``agentops.demo.DEMO_STEPS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenants.models import ApiKey, Tenant


@dataclass
class DemoContext:
    tenants: dict[str, Tenant]
    """Seeded tenants by slug: ``acme``, ``globex``, ``initech``."""
    users: dict[str, dict[str, Any]]
    """Users by tenant slug, then role value: ``ctx.users["acme"]["operator"]``."""
    api_keys: dict[str, str]
    """The raw API key created for each tenant in this run (scopes runs, escalations, spend)."""
    stdout: Any
    redis_ok: bool
    """True when Redis answered and real ``rqworker`` processes are running."""
    base_url: str
    """Where the console is (or will be) served, e.g. ``http://127.0.0.1:8000``."""
    password: str = ""
    staff: Any = None
    key_rows: dict[str, ApiKey] = field(default_factory=dict)
    extra_logins: list[tuple[str, str]] = field(default_factory=list)
    """Further ``(username, what it shows)`` lines a step wants printed in the final block."""
    processes: list[Any] = field(default_factory=list)
    """Processes a step starts (``subprocess.Popen``, e.g. the demo MCP server); the demo command stops them."""

    def say(self, message: str) -> None:
        self.stdout.write(f"==> {message}")

    def admin(self, slug: str) -> Any:
        return self.users[slug]["admin"]
