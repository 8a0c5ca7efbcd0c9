"""The tool registry: what a tool is, how its arguments are checked, and how it is executed.

(Over 400 lines on purpose: this is the one tool contract the harness, grants, forms and API call as
``registry.*``; its sections — spec, validation, execution — are marked below.)

The harness owns the decisions (which tools a run may use, which calls are gated); this module owns
the mechanics it relies on, all of them safe against a model that makes things up:

* :func:`get_tool` returns ``None`` for an unknown name; :func:`require_tool` raises
  :class:`ToolNotFoundError`, and :func:`error_outcome` turns any :class:`ToolError` into the
  structured ``is_error`` result the model receives.
* :func:`validate_arguments` checks the JSON schema (draft 2020-12) and the grant's allow-lists.
* :func:`threshold_reason` says why a grant's ``approval_over`` gates a call.
* :func:`execute` validates again, runs the tool, retries only :class:`TransientToolError`, and
  never raises: every failure becomes a :class:`ToolOutcome` with ``is_error=True``.

Allow-list keys a grant's ``allow`` dict may carry (see :data:`ALLOW_KEYS`):

``domains`` (fetch_url, argument ``url``)
    Host must equal an entry or be a subdomain of one. Missing or empty refuses every URL.
``recipient_domains`` (send_email, argument ``to``)
    Recipient's domain must equal an entry or be a subdomain of one. Missing means any recipient;
    an empty list refuses every recipient.
``max_amount`` (issue_refund, argument ``amount``)
    Decimal ceiling per call. Missing means no ceiling beyond the charge itself. A value that is not
    a decimal refuses every call (a broken grant fails closed).
``values`` (tools that declare it, e.g. every MCP tool; any argument)
    ``{"argument": [allowed values]}``: a call whose argument is present and not in its list is
    refused. Arguments not named are unrestricted; a malformed entry refuses every call.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from django.db import InterfaceError, OperationalError
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaValidationError

from agentops.redact import redact
from agentops.tools import net
from agentops.tools.errors import (
    ToolError,
    ToolNotFoundError,
    ToolPermissionError,
    ToolValidationError,
    TransientToolError,
)
from agentops.tools.output import (
    DEFAULT_OUTPUT_LIMIT,
    arguments_sha256,
    canonical_arguments,
    to_json_text,
    truncate_output,
)

__all__ = [
    "ALLOW_KEYS",
    "SIDE_EFFECTS",
    "ToolContext",
    "ToolError",
    "ToolNotFoundError",
    "ToolOutcome",
    "ToolPermissionError",
    "ToolSpec",
    "ToolValidationError",
    "TransientToolError",
    "all_tools",
    "allow_problems",
    "register_tenant_source",
    "arguments_sha256",
    "canonical_arguments",
    "error_outcome",
    "execute",
    "get_tool",
    "get_tools",
    "require_tool",
    "threshold_reason",
    "to_anthropic",
    "tool",
    "truncate_output",
    "validate_arguments",
]

logger = logging.getLogger(__name__)

SideEffect = Literal["read", "write", "irreversible"]
SIDE_EFFECTS: frozenset[str] = frozenset({"read", "write", "irreversible"})

ALLOW_KEYS: dict[str, str] = {
    "domains": "fetch_url: hosts (exact or subdomain) that may be fetched; missing or empty refuses all",
    "recipient_domains": "send_email: recipient domains (exact or subdomain); missing allows any, empty refuses all",
    "max_amount": 'issue_refund: largest amount per call, a decimal string such as "500.00"',
    "max_facts": "remember: most facts one run may write, a whole number (enforced by the tool: it counts the run's facts)",
    "values": 'MCP tools: {"argument": [allowed values]}; a call with another value is refused',
}

# A practical address check: no network, no DNS; rejects header-injection characters by construction.
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_FORMAT_CHECKER = FormatChecker(formats=())


@_FORMAT_CHECKER.checks("email")
def _is_email(instance: object) -> bool:
    return not isinstance(instance, str) or bool(EMAIL_RE.match(instance))


ToolFunc = Callable[..., Any]


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool. ``func`` is called as ``func(ctx, **arguments)`` after validation."""
    name: str
    description: str
    input_schema: dict[str, Any]
    side_effect: SideEffect
    idempotent: bool
    func: ToolFunc
    # The harness intercepts a hand-off (escalate_to_human) instead of executing it.
    handoff: bool = False
    allow_keys: tuple[str, ...] = ()
    threshold_args: tuple[str, ...] = ()
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", self.name):
            raise ValueError(f"tool name {self.name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$")
        if self.side_effect not in SIDE_EFFECTS:
            raise ValueError(f"{self.name}: side_effect must be one of {sorted(SIDE_EFFECTS)}")
        if not self.description.strip():
            raise ValueError(f"{self.name}: a description is required")
        schema = self.input_schema
        if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
            raise ValueError(f"{self.name}: input_schema must be an object with additionalProperties: false")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"{self.name}: invalid input_schema: {exc.message}") from exc
        unknown = set(self.allow_keys) - set(ALLOW_KEYS)
        if unknown:
            raise ValueError(f"{self.name}: unknown allow_keys {sorted(unknown)}")
        properties = schema.get("properties", {})
        missing = [arg for arg in self.threshold_args if arg not in properties]
        if missing:
            raise ValueError(f"{self.name}: threshold_args {missing} are not schema properties")
        object.__setattr__(self, "validator", Draft202012Validator(schema, format_checker=_FORMAT_CHECKER))


@dataclass
class ToolContext:
    """What a tool may know about the call: whose data, which run, which grant allow-lists."""
    tenant_id: int
    run_id: int
    agent_id: int
    tool_use_id: str
    allow: dict[str, Any] = field(default_factory=dict)
    # The assistant turn (message seq) that made the call, and the run's metadata as submitted
    # (``remember`` reads the run's subject from it).
    seq: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.run_id}:{self.tool_use_id}"


@dataclass
class ToolOutcome:
    """The result of :func:`execute`: ``content`` goes back to the model as the ``tool_result``."""
    content: str
    is_error: bool
    error_class: str = ""
    attempts: int = 0
    duration_ms: float = 0.0
    # Characters of the full output before truncation.
    size: int = 0
    truncated: bool = False


_REGISTRY: dict[str, ToolSpec] = {}

# Tools that belong to one tenant (MCP servers a tenant registered: agentops.mcp). A source maps a
# tenant id to that tenant's extra tools; it is registered at start-up (AppConfig.ready) so this
# floor never imports the apps that own them. Their names carry ``prefix``, which no built-in uses,
# so a tenant's tool can never shadow a built-in and a name alone says which source to ask.
TenantSource = Callable[[int], Mapping[str, "ToolSpec"]]
_TENANT_SOURCES: dict[str, TenantSource] = {}


def register_tenant_source(prefix: str, source: TenantSource) -> None:
    """Let ``source(tenant_id)`` add per-tenant tools whose names start with ``prefix``."""
    clash = [name for name in _REGISTRY if name.startswith(prefix)]
    if clash:
        raise ValueError(f"built-in tools {clash} use the tenant tool prefix {prefix!r}")
    _TENANT_SOURCES[prefix] = source


def _tenant_id(tenant: object) -> int | None:
    if tenant is None or isinstance(tenant, int):
        return tenant
    return int(tenant.pk)  # type: ignore[attr-defined]


def tool(
    *,
    name: str,
    description: str,
    input_schema: dict[str, Any],
    side_effect: SideEffect,
    idempotent: bool,
    handoff: bool = False,
    allow_keys: tuple[str, ...] = (),
    threshold_args: tuple[str, ...] = (),
) -> Callable[[ToolFunc], ToolFunc]:
    """Register the decorated ``func(ctx: ToolContext, **arguments)`` as a tool."""
    def decorator(func: ToolFunc) -> ToolFunc:
        spec = ToolSpec(
            name=name,
            description=description,
            input_schema=input_schema,
            side_effect=side_effect,
            idempotent=idempotent,
            func=func,
            handoff=handoff,
            allow_keys=tuple(allow_keys),
            threshold_args=tuple(threshold_args),
        )
        if any(name.startswith(prefix) for prefix in _TENANT_SOURCES):
            raise ValueError(f"tool {name!r} uses a prefix reserved for tenant tools")
        existing = _REGISTRY.get(name)
        # Re-importing the same module (autoreload) re-registers the same function: allowed.
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ValueError(f"tool {name!r} is already registered by {existing.func.__module__}")
        _REGISTRY[name] = spec
        return func

    return decorator


def get_tool(name: object, tenant: object = None) -> ToolSpec | None:
    """The spec for ``name``, or None (a hallucinated name, or not a string at all).

    With ``tenant`` (a tenant or its id), that tenant's own tools are found too; without it only
    built-ins are. Another tenant's tool is None, exactly like a name nobody registered.
    """
    if not isinstance(name, str):
        return None
    spec = _REGISTRY.get(name)
    tenant_id = _tenant_id(tenant)
    if spec is not None or tenant_id is None:
        return spec
    for prefix, source in _TENANT_SOURCES.items():
        if name.startswith(prefix):
            return source(tenant_id).get(name)
    return None


def get_tools(names: list[str], tenant: object = None) -> dict[str, ToolSpec]:
    """:func:`get_tool` for many names: each tenant source is asked once (one query for a run's
    tool set), and not at all when no name carries its prefix. Unknown names are left out."""
    found = {name: _REGISTRY[name] for name in names if isinstance(name, str) and name in _REGISTRY}
    tenant_id = _tenant_id(tenant)
    if tenant_id is not None:
        for prefix, source in _TENANT_SOURCES.items():
            if any(isinstance(name, str) and name.startswith(prefix) for name in names):
                specs = source(tenant_id)
                found.update({name: specs[name] for name in names if name in specs})
    return found


def require_tool(name: object, tenant: object = None) -> ToolSpec:
    spec = get_tool(name, tenant)
    if spec is None:
        shown = name[:100] if isinstance(name, str) else type(name).__name__
        raise ToolNotFoundError(f"unknown tool {shown!r}; use only the tools you were given")
    return spec


def all_tools(tenant: object = None) -> dict[str, ToolSpec]:
    """Built-ins, plus ``tenant``'s own tools when a tenant (or its id) is given."""
    tools = dict(_REGISTRY)
    tenant_id = _tenant_id(tenant)
    if tenant_id is not None:
        for source in _TENANT_SOURCES.values():
            tools.update(source(tenant_id))
    return tools


def to_anthropic(spec: ToolSpec) -> dict[str, Any]:
    """The tool definition for the Messages API ``tools`` parameter."""
    return {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}


# --- validation ------------------------------------------------------------------------------


def _json_path(error: SchemaValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{str(part)[:64]}"
    return path


def _schema_reason(error: SchemaValidationError) -> str:
    """A reason that names the rule, never the (possibly huge or hostile) offending value."""
    v, limit = error.validator, error.validator_value
    if v == "required":
        missing = [p for p in limit if isinstance(error.instance, dict) and p not in error.instance]
        return f"missing required property {', '.join(repr(m) for m in missing) or 'a required property'}"
    if v == "additionalProperties":
        extra = sorted(str(k)[:64] for k in error.instance if k not in error.schema.get("properties", {}))
        shown = ", ".join(repr(k) for k in extra[:5])
        return (
            f"unexpected property {shown}; allowed: {', '.join(sorted(error.schema.get('properties', {})))}"
        )
    reasons = {
        "type": f"must be of type {limit}",
        "minLength": f"must be at least {limit} characters",
        "maxLength": f"must be at most {limit} characters",
        "pattern": f"must match the pattern {limit}",
        "enum": f"must be one of {', '.join(repr(x) for x in limit) if isinstance(limit, list) else limit}",
        "const": f"must be {limit!r}",
        "minimum": f"must be >= {limit}",
        "maximum": f"must be <= {limit}",
        "exclusiveMinimum": f"must be > {limit}",
        "exclusiveMaximum": f"must be < {limit}",
        "format": f"is not a valid {limit}",
        "minItems": f"must have at least {limit} items",
        "maxItems": f"must have at most {limit} items",
        "minProperties": f"must have at least {limit} properties",
        "maxProperties": f"must have at most {limit} properties",
    }
    if v in reasons:
        return reasons[v]
    return f"fails the {v!r} rule"


def _check_schema(spec: ToolSpec, arguments: object) -> dict[str, Any]:
    if not isinstance(arguments, dict):
        raise ToolValidationError(
            f"arguments for {spec.name} must be a JSON object, got {type(arguments).__name__}"
        )
    errors = sorted(
        spec.validator.iter_errors(arguments),
        key=lambda e: (list(map(str, e.absolute_path)), str(e.validator)),
    )
    if errors:
        lines = [f"{_json_path(e)}: {_schema_reason(e)}" for e in errors[:5]]
        if len(errors) > 5:
            lines.append(f"... and {len(errors) - 5} more")
        raise ToolValidationError(f"invalid arguments for {spec.name}: " + "; ".join(lines))
    return dict(arguments)


def _decimal(value: object, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ToolValidationError(f"{what} is not a decimal number")
    if not number.is_finite():
        raise ToolValidationError(f"{what} is not a finite number")
    return number


def _domain_of_email(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower().rstrip(".")


def _enforce_domains(spec: ToolSpec, arguments: dict[str, Any], allow: Mapping[str, Any]) -> None:
    if "url" in arguments:
        net.vet_url(arguments["url"], allow.get("domains"))


def _enforce_recipient_domains(spec: ToolSpec, arguments: dict[str, Any], allow: Mapping[str, Any]) -> None:
    if "recipient_domains" not in allow or "to" not in arguments:
        return
    allowed = net.normalise_domains(allow["recipient_domains"])
    domain = _domain_of_email(str(arguments["to"]))
    if not net.host_allowed(domain, allowed):
        raise ToolPermissionError(
            f"recipient domain {domain[:100]!r} is not in the grant's allowed recipient domains"
        )


def _enforce_max_amount(spec: ToolSpec, arguments: dict[str, Any], allow: Mapping[str, Any]) -> None:
    if "max_amount" not in allow or "amount" not in arguments:
        return
    try:
        ceiling = _decimal(allow["max_amount"], "allow.max_amount")
    except ToolValidationError:
        raise ToolPermissionError(
            "the grant's max_amount is not a decimal; refusing every amount until it is fixed"
        )
    amount = _decimal(arguments["amount"], "amount")
    if amount > ceiling:
        raise ToolPermissionError(f"amount {amount} is above the grant's limit of {ceiling} per call")


def _enforced_by_tool(spec: ToolSpec, arguments: dict[str, Any], allow: Mapping[str, Any]) -> None:
    """A key the tool itself enforces, because it needs stored state (e.g. how many facts the run wrote)."""


def _enforce_values(spec: ToolSpec, arguments: dict[str, Any], allow: Mapping[str, Any]) -> None:
    if "values" not in allow:
        return
    rules = allow["values"]
    if not isinstance(rules, Mapping) or not all(isinstance(v, list) for v in rules.values()):
        raise ToolPermissionError("the grant's allowed values are malformed; refusing every call until it is fixed")
    for arg, allowed in rules.items():
        if arg in arguments and not any(_same_value(arguments[arg], a) for a in allowed):
            raise ToolPermissionError(f"{str(arg)[:64]} is not one of the values the grant allows")


def _same_value(value: object, allowed: object) -> bool:
    # True == 1 in Python; a grant listing 1 must not allow true.
    return type(value) is type(allowed) and value == allowed or (
        isinstance(value, int | float) and isinstance(allowed, int | float)
        and not isinstance(value, bool) and not isinstance(allowed, bool) and value == allowed
    )


_ALLOW_ENFORCERS: dict[str, Callable[[ToolSpec, dict[str, Any], Mapping[str, Any]], None]] = {
    "domains": _enforce_domains,
    "recipient_domains": _enforce_recipient_domains,
    "max_amount": _enforce_max_amount,
    "max_facts": _enforced_by_tool,
    "values": _enforce_values,
}


def validate_arguments(spec: ToolSpec, arguments: object, allow: Mapping[str, Any] | None) -> dict[str, Any]:
    """Schema, then allow-lists. Returns a shallow copy of the arguments.

    Raises :class:`ToolValidationError` (schema) or :class:`ToolPermissionError` (allow-list).
    Both are deterministic: calling again with the same arguments fails the same way.
    """
    checked = _check_schema(spec, arguments)
    allow = allow or {}
    if not isinstance(allow, Mapping):
        raise ToolPermissionError("the tool grant's allow-list is malformed; refusing")
    for key in spec.allow_keys:
        _ALLOW_ENFORCERS[key](spec, checked, allow)
    return checked


def allow_problems(spec: ToolSpec, allow: object) -> list[str]:
    """What is wrong with a grant's ``allow`` dict for ``spec`` (for grant forms; empty means fine)."""
    if not isinstance(allow, dict):
        return ["allow must be a JSON object"]
    problems = [f"{spec.name} does not use allow key {key!r}" for key in allow if key not in spec.allow_keys]
    for key in ("domains", "recipient_domains"):
        if key in allow and (
            not isinstance(allow[key], list) or not all(isinstance(d, str) and d.strip() for d in allow[key])
        ):
            problems.append(f"{key} must be a list of domain names")
    if "max_facts" in allow and (type(allow["max_facts"]) is not int or allow["max_facts"] < 0):
        problems.append("max_facts must be a whole number, 0 or more")
    if "values" in allow:
        rules = allow["values"]
        properties = spec.input_schema.get("properties", {})
        if not isinstance(rules, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str | int | float | bool) for x in v) for v in rules.values()
        ):
            problems.append('values must map argument names to lists of allowed values, e.g. {"order_id": ["A-1"]}')
        else:
            problems.extend(f"{spec.name} has no argument {k!r}" for k in rules if k not in properties)
    if "max_amount" in allow:
        try:
            if _decimal(allow["max_amount"], "max_amount") < 0:
                problems.append("max_amount must not be negative")
        except ToolValidationError:
            problems.append('max_amount must be a decimal string such as "500.00"')
    return problems


def threshold_reason(
    spec: ToolSpec, arguments: Mapping[str, Any], approval_over: Mapping[str, Any] | None
) -> str | None:
    """Why ``approval_over`` gates this call, or None.

    ``{"amount": "100.00"}`` with ``amount`` ``"900.00"`` gives
    ``"amount 900.00 is over the approval threshold 100.00"``. Equal is not over. A threshold on an
    argument the tool does not offer for gating, or a value that is not a decimal, gates the call
    (a broken or mistyped grant fails closed instead of silently approving everything).
    """
    if not approval_over:
        return None
    if not isinstance(approval_over, Mapping):
        return "the grant's approval_over is malformed; gating to be safe"
    reasons: list[str] = []
    for arg, raw_threshold in approval_over.items():
        if arg not in spec.threshold_args:
            reasons.append(
                f"approval_over names {str(arg)[:64]!r}, which {spec.name} cannot be gated on; gating to be safe"
            )
            continue
        try:
            threshold = _decimal(raw_threshold, f"approval threshold for {arg}")
        except ToolValidationError:
            reasons.append(f"the approval threshold for {arg} is not a decimal; gating to be safe")
            continue
        if arg not in arguments:
            continue
        try:
            value = _decimal(arguments[arg], arg)
        except ToolValidationError:
            reasons.append(f"{arg} is not a decimal; gating to be safe")
            continue
        if value > threshold:
            reasons.append(f"{arg} {arguments[arg]} is over the approval threshold {raw_threshold}")
    return "; ".join(reasons) or None


# --- execution -------------------------------------------------------------------------------


def _error_content(error_type: str, message: str) -> str:
    return to_json_text({"error": {"type": error_type, "message": message}})


def error_outcome(error: ToolError, *, attempts: int = 0, duration_ms: float = 0.0) -> ToolOutcome:
    """The structured ``is_error`` result for ``error`` (also for refusals decided by the harness)."""
    content = _error_content(error.error_class, error.message)
    return ToolOutcome(
        content=content,
        is_error=True,
        error_class=error.error_class,
        attempts=attempts,
        duration_ms=duration_ms,
        size=len(content),
    )


def _render(result: Any) -> str:
    return result if isinstance(result, str) else to_json_text(result)


def execute(
    spec: ToolSpec,
    ctx: ToolContext,
    arguments: object,
    *,
    max_attempts: int = 3,
    backoff_s: float = 0.2,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
) -> ToolOutcome:
    """Validate and run ``spec`` for ``ctx``; never raises.

    The arguments are validated again here (against ``ctx.allow``), so nothing the model wrote
    reaches a tool unchecked even if a caller skipped :func:`validate_arguments`. Only
    :class:`TransientToolError` is retried, ``max_attempts`` times in all, sleeping
    ``backoff_s * 2**(n-1)`` between attempts — and only for a tool declared ``idempotent`` or a
    failure marked ``not_delivered`` (the call never reached the tool): a "transient" failure of any
    other may have taken effect, so it goes back to the model once.
    """
    started = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000.0

    if spec.handoff:
        return error_outcome(
            ToolError(f"{spec.name} is a hand-off handled by the harness; it is never executed as a tool"),
            duration_ms=elapsed_ms(),
        )
    try:
        checked = validate_arguments(spec, arguments, ctx.allow)
    except ToolError as exc:
        return error_outcome(exc, duration_ms=elapsed_ms())

    attempts = 0
    max_attempts = max(1, max_attempts)
    while True:
        attempts += 1
        try:
            result = spec.func(ctx, **checked)
        except TransientToolError as exc:
            # Retry an idempotent tool, or any tool whose call provably never reached it.
            if attempts >= max_attempts or not (spec.idempotent or exc.not_delivered):
                logger.warning(
                    "tool %s gave up after %d attempts: %s", spec.name, attempts, redact(exc.message)
                )
                return error_outcome(
                    TransientToolError(f"{exc.message} (gave up after {attempts} attempts)"),
                    attempts=attempts,
                    duration_ms=elapsed_ms(),
                )
            delay = backoff_s * (2 ** (attempts - 1))
            logger.info(
                "tool %s transient failure (attempt %d), retrying in %.2fs", spec.name, attempts, delay
            )
            time.sleep(delay)
            continue
        except ToolError as exc:
            return error_outcome(exc, attempts=attempts, duration_ms=elapsed_ms())
        except (OperationalError, InterfaceError):
            raise  # a database outage is not the tool's failure: the run retries the step
        except Exception as exc:
            # The message may carry tenant data; the model gets the class only, the log a redacted text.
            logger.exception(
                "tool %s raised %s: %s (run %s, tool_use %s)",
                spec.name,
                type(exc).__name__,
                redact(str(exc))[:500],
                ctx.run_id,
                ctx.tool_use_id,
            )
            content = _error_content(
                "internal_error", f"{spec.name} failed with an internal error ({type(exc).__name__})"
            )
            return ToolOutcome(
                content=content,
                is_error=True,
                error_class="internal_error",
                attempts=attempts,
                duration_ms=elapsed_ms(),
                size=len(content),
            )
        try:
            text = _render(result)
        except (TypeError, ValueError) as exc:
            logger.error("tool %s returned an unserialisable result: %s", spec.name, type(exc).__name__)
            content = _error_content("internal_error", f"{spec.name} returned a result that is not JSON")
            return ToolOutcome(content, True, "internal_error", attempts, elapsed_ms(), len(content))
        shown = truncate_output(text, output_limit)
        return ToolOutcome(
            content=shown,
            is_error=False,
            error_class="",
            attempts=attempts,
            duration_ms=elapsed_ms(),
            size=len(text),
            truncated=len(shown) != len(text),
        )
