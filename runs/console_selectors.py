"""Reads for the runs console: the run list, the trace waterfall, the readable message log.

Everything here is scoped by tenant and built to a fixed number of queries per page (no N+1):
the list annotates its flags with ``EXISTS`` subqueries, the detail page reads each child table once.

(Over 400 lines on purpose: the run page's waterfall, log window and streaming card are read together
in one pass; splitting them would split that pass.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from agentops.harness import deltas, hooks
from agentops.redact import redact, redact_obj
from runs.models import Agent, Message, Run, RunStatus, Span, ToolCall, ToolGrant
from tenants.models import Tenant

# A tool_result longer than this is cut in the log view; the durable log keeps all of it.
RESULT_DISPLAY_CHARS = 4000
TEXT_DISPLAY_CHARS = 20_000
# Escalations that held a call (a review of a finished run held nothing).
GATED_KINDS = (hooks.KIND_TOOL, hooks.KIND_HANDOFF, hooks.KIND_OUTCOME_UNKNOWN)


# -- the run list ----------------------------------------------------------------------------


def runs_for_list(*, tenant: Tenant, status: str = "", agent_id: int | None = None, outcome: str = "", q: str = "",
                  flag: str = "", model: str = "", cost_min: Decimal | None = None, cost_max: Decimal | None = None,
                  created_from: date | None = None, created_to: date | None = None, kind: str = "") -> QuerySet[Run]:
    """The tenant's runs, newest first, filtered, with everything a list row shows in one query (but the
    ``gated`` flag: :func:`mark_gated` sets it on the page's rows).
    Dates are days in the viewer's time zone (the active one). ``kind``: "" production runs only (playground
    runs left out), "playground" only those, "all" both."""
    qs = (
        Run.objects.for_tenant(tenant)
        .select_related("agent", "submitted_by", "api_key")
        .defer("input", "result", "error_message", "metadata")
        .order_by("-created_at", "-id")
    )
    if kind != "all":
        qs = qs.filter(playground=kind == "playground")
    if status:
        qs = qs.filter(status=status)
    if agent_id is not None:
        qs = qs.filter(agent_id=agent_id)
    if outcome:
        qs = qs.filter(outcome=outcome)
    if flag == "gated":
        qs = qs.filter(Exists(_gated(tenant.pk).filter(run_id=OuterRef("pk"))))
    elif flag:
        qs = qs.filter(flags__has_item=flag)
    if model:
        qs = qs.filter(model_used=model)
    if cost_min is not None:
        qs = qs.filter(cost__gte=cost_min)
    if cost_max is not None:
        qs = qs.filter(cost__lte=cost_max)
    if created_from:
        qs = qs.filter(created_at__gte=timezone.make_aware(datetime.combine(created_from, time.min)))
    if created_to:
        qs = qs.filter(created_at__lt=timezone.make_aware(datetime.combine(created_to + timedelta(days=1), time.min)))
    if q:
        # On PostgreSQL both are served by the trigram GIN indexes on UPPER(input) / UPPER(result).
        text = Q(input__icontains=q) | Q(result__icontains=q)
        ident = q.lstrip("#")
        if ident.isascii() and ident.isdigit() and len(ident) < 19:
            text |= Q(pk=int(ident))
        qs = qs.filter(text)
    return cast(QuerySet[Run], qs)


def _gated(tenant_id: int) -> QuerySet[Any]:
    """The tenant's escalations that held a call. The model comes through the reverse relation: runs sits
    below escalations and does not import it."""
    escalation = Run._meta.get_field("escalations").related_model
    return cast(QuerySet[Any], escalation._default_manager.filter(tenant_id=tenant_id, kind__in=GATED_KINDS))


def mark_gated(runs: list[Run], *, tenant: Tenant) -> list[Run]:
    """Set ``flag_gated`` on the runs of one page, with one query on the escalations of those runs only.

    (An ``EXISTS`` annotation on the list query was planned as a hashed scan of every escalation, once
    per request, before the LIMIT: 35 ms at 10,000 escalations, growing with them.)"""
    held = set(_gated(tenant.pk).filter(run_id__in=[r.pk for r in runs]).values_list("run_id", flat=True)) if runs else set()
    for run in runs:
        run.flag_gated = run.pk in held  # type: ignore[attr-defined]
    return runs


OUTCOMES_TTL_S = 60


def outcomes_for_tenant(tenant: Tenant) -> list[str]:
    """The outcome filter's choices, cached a minute per tenant: never a DISTINCT over the runs per request.

    On a miss the outcomes are found by skipping through the (tenant, outcome) index one value at a
    time (a recursive query, one index probe per outcome), not by reading every run.
    """
    key = f"runs:outcomes:{tenant.pk}"
    found = cache.get(key)
    if found is None:
        found = _distinct_outcomes(tenant.pk)
        cache.set(key, found, OUTCOMES_TTL_S)
    return list(found)


def _distinct_outcomes(tenant_id: int, limit: int = 100) -> list[str]:
    # The table name is the model's own, quoted: no input reaches the SQL text.
    table = connection.ops.quote_name(Run._meta.db_table)
    sql = f"""
        WITH RECURSIVE o(outcome, n) AS (
            SELECT (SELECT MIN(outcome) FROM {table} WHERE tenant_id = %s AND outcome > ''), 1
            UNION ALL
            SELECT (SELECT MIN(outcome) FROM {table} WHERE tenant_id = %s AND outcome > o.outcome), n + 1
            FROM o WHERE o.outcome IS NOT NULL AND n < %s
        )
        SELECT outcome FROM o WHERE outcome IS NOT NULL"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id, tenant_id, limit])
        return [row[0] for row in cursor.fetchall()]


def agents_for_tenant(tenant: Tenant) -> QuerySet[Agent]:
    return Agent.objects.for_tenant(tenant).order_by("name")


def agents_with_stats(tenant: Tenant) -> QuerySet[Agent]:
    since = timezone.now() - timedelta(days=7)
    return agents_for_tenant(tenant).annotate(
        runs_7d=Count("runs", filter=Q(runs__created_at__gte=since)),
        active_runs=Count("runs", filter=Q(runs__status__in=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.AWAITING_APPROVAL])),
    )


def grants_for_tenant(tenant: Tenant) -> QuerySet[ToolGrant]:
    return ToolGrant.objects.for_tenant(tenant).select_related("agent", "created_by").order_by("tool_name", "agent__name", "role", "id")


# -- the run page ----------------------------------------------------------------------------


@dataclass
class WaterfallRow:
    span: Span
    depth: int
    offset_pct: float
    width_pct: float
    kind: str  # invoke_agent | chat | execute_tool | other
    label: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: Decimal | None = None
    latency_ms: float | None = None
    error_type: str = ""
    prompt_version_id: Any = None
    prompt_version: Any = None  # the version's number and hash, on the invoke_agent span
    prompt_sha256: str = ""
    model: str = ""
    flags: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Waterfall:
    rows: list[WaterfallRow]
    total_ms: float
    started_at: datetime | None
    ticks: list[tuple[float, str]]  # (position %, label)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _fmt_ms(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)}m {int(ms % 60_000 // 1000):02d}s"


def _ticks(total_ms: float) -> list[tuple[float, str]]:
    if total_ms <= 0:
        return []
    return [(pct, _fmt_ms(total_ms * pct / 100)) for pct in (0.0, 25.0, 50.0, 75.0, 100.0)]


def build_waterfall(spans: list[Span], *, message_flags: dict[str, list[str]], call_flags: dict[str, list[str]]) -> Waterfall:
    """Spans as rows of a waterfall: tree order, each bar placed by start offset, sized by duration.

    ``message_flags`` maps a model response id to the evaluator flags of that turn and
    ``call_flags`` a tool_use id to the flags of its result, so each bar can show them.
    """
    if not spans:
        return Waterfall(rows=[], total_ms=0.0, started_at=None, ticks=[])
    t0 = min(s.started_at for s in spans)
    t1 = max(s.ended_at for s in spans)
    total_ms = max((t1 - t0).total_seconds() * 1000, max(s.duration_ms for s in spans), 0.001)

    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[Span]] = {}
    roots: list[Span] = []
    for s in spans:
        if s.parent_span_id and s.parent_span_id in by_id and s.parent_span_id != s.span_id:
            children.setdefault(s.parent_span_id, []).append(s)
        else:
            roots.append(s)

    ordered: list[tuple[Span, int]] = []
    seen: set[int] = set()

    def walk(span: Span, depth: int) -> None:
        if span.pk in seen or depth > 20:  # a malformed parent cycle must not hang the page
            return
        seen.add(span.pk)
        ordered.append((span, depth))
        for child in sorted(children.get(span.span_id, []), key=lambda c: (c.started_at, c.pk)):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda r: (r.started_at, r.pk)):
        walk(root, 0)

    rows = []
    for span, depth in ordered:
        a = span.attributes if isinstance(span.attributes, dict) else {}
        op = str(a.get("gen_ai.operation.name") or span.name.split(" ", 1)[0])
        kind = op if op in ("invoke_agent", "chat", "execute_tool") else "other"
        offset = (span.started_at - t0).total_seconds() * 1000 / total_ms * 100
        width = span.duration_ms / total_ms * 100
        offset = min(max(offset, 0.0), 99.5)
        flags: list[str] = []
        if kind == "chat":
            flags = list(message_flags.get(str(a.get("gen_ai.response.id") or ""), []))
        elif kind == "execute_tool":
            flags = list(call_flags.get(str(a.get("gen_ai.tool.call.id") or ""), []))
        latency = a.get("agentops.latency_ms")
        rows.append(
            WaterfallRow(
                span=span,
                depth=depth,
                offset_pct=round(offset, 3),
                width_pct=round(min(max(width, 0.4), 100.0 - offset), 3),
                kind=kind,
                label=span.name,
                input_tokens=_int(a.get("gen_ai.usage.input_tokens")),
                output_tokens=_int(a.get("gen_ai.usage.output_tokens")),
                cost=_decimal(a.get("agentops.cost_usd")),
                latency_ms=float(latency) if isinstance(latency, int | float) and not isinstance(latency, bool) else span.duration_ms,
                error_type=str(a.get("error.type") or ""),
                prompt_version_id=a.get("agentops.prompt_version_id"),
                prompt_version=a.get("agentops.prompt_version"), prompt_sha256=str(a.get("agentops.prompt_sha256") or ""),
                model=str(a.get("gen_ai.response.model") or a.get("gen_ai.request.model") or ""),
                flags=flags,
                details=dict(sorted(a.items())),
            )
        )
    return Waterfall(rows=rows, total_ms=total_ms, started_at=t0, ticks=_ticks(total_ms))


@dataclass
class LogBlock:
    type: str
    text: str = ""
    name: str = ""
    tool_use_id: str = ""
    is_error: bool = False
    truncated_chars: int = 0


@dataclass
class LogEntry:
    message: Message
    blocks: list[LogBlock]


def _clip(text: str, limit: int) -> tuple[str, int]:
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


def _pretty(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _maybe_pretty(text: str) -> str:
    """JSON tool output indented for reading; anything else as it is."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")) or len(stripped) > 200_000:
        return text
    try:
        return _pretty(json.loads(stripped))
    except (ValueError, RecursionError):
        return text


def _result_text(content: Any) -> str:
    """A tool_result's content as text: a string, or the text of its content blocks."""
    if isinstance(content, str):
        return _maybe_pretty(content)
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append(_maybe_pretty(str(item.get("text", ""))))
            else:
                parts.append(_pretty(item))
        return "\n".join(parts)
    return _pretty(content)


def log_blocks(content: Any) -> list[LogBlock]:
    """The content blocks of one message, redacted and clipped for display."""
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        content = [{"type": "unknown", "value": content}]
    blocks = []
    for raw in content:
        if not isinstance(raw, dict):
            raw = {"type": "unknown", "value": raw}
        kind = str(raw.get("type") or "unknown")
        if kind == "text":
            text, cut = _clip(redact(str(raw.get("text", ""))), TEXT_DISPLAY_CHARS)
            blocks.append(LogBlock(type="text", text=text, truncated_chars=cut))
        elif kind == "tool_use":
            text, cut = _clip(_pretty(redact_obj(raw.get("input", {}))), TEXT_DISPLAY_CHARS)
            blocks.append(LogBlock(type="tool_use", text=text, name=str(raw.get("name", ""))[:200],
                                   tool_use_id=str(raw.get("id", ""))[:100], truncated_chars=cut))
        elif kind == "tool_result":
            text, cut = _clip(redact(_result_text(raw.get("content", ""))), RESULT_DISPLAY_CHARS)
            blocks.append(LogBlock(type="tool_result", text=text, tool_use_id=str(raw.get("tool_use_id", ""))[:100],
                                   is_error=bool(raw.get("is_error")), truncated_chars=cut))
        else:
            text, cut = _clip(_pretty(redact_obj(raw)), RESULT_DISPLAY_CHARS)
            blocks.append(LogBlock(type=kind[:40], text=text, truncated_chars=cut))
    return blocks


# The run page shows the latest turns; earlier ones load on demand ("Earlier turns", htmx).
TURNS_SHOWN = 50
SPANS_SHOWN = 4 * TURNS_SHOWN


@dataclass
class RunPage:
    run: Run
    log: list[LogEntry]
    waterfall: Waterfall
    tool_calls: list[ToolCall]
    escalations: list[Any]  # escalations.models.Escalation (an app above runs)
    total_tokens: int
    flags: list[str]
    earlier_before: int | None = None  # the seq "Earlier turns" loads before; None when the log starts here
    last_seq: int = 0  # the newest turn the page has: the live poll asks only for turns after it
    appended: bool = False  # a live update: ``log`` holds only the turns after the poll's ``after_seq``
    streaming: Streaming | None = None


@dataclass
class Streaming:
    """The model's answer as it is being written (not persisted yet), from the run's live deltas."""
    seq: int
    model: str
    text: str
    tools: list[dict[str, str]]


def streaming_turn(run: Run, persisted_seq: int) -> Streaming | None:
    """The streamed part of the turn after ``persisted_seq``, from its last (re)start; None when no
    call is streaming (or Redis does not answer). Redacted like everything the console shows."""
    if run.status != RunStatus.RUNNING:
        return None
    entries = [d for _, d in deltas.read(run.pk, "0") if isinstance(d.get("seq"), int) and d["seq"] > persisted_seq]
    starts = [i for i, d in enumerate(entries) if d.get("kind") == "start"]
    if not starts:
        return None
    current = entries[starts[-1]:]
    text = "".join(str(d.get("text", "")) for d in current if d.get("kind") == "text")
    tools: dict[Any, dict[str, str]] = {}
    for d in current:
        if d.get("kind") == "tool_use":
            tools[d.get("index")] = {"name": str(d.get("name", "")), "input": ""}
        elif d.get("kind") == "tool_input" and d.get("index") in tools:
            tools[d.get("index")]["input"] += str(d.get("partial_json", ""))
    return Streaming(seq=current[0]["seq"], model=str(current[0].get("model", "")), text=redact(text),
                     tools=[{"name": t["name"], "input": redact(t["input"])} for t in tools.values()])


def log_window(run: Run, *, before_seq: int | None = None, turns: int = TURNS_SHOWN) -> tuple[list[Message], int | None]:
    """The latest ``turns`` turns of the log (before ``before_seq``), oldest first, and where earlier ones start."""
    qs = Message.objects.for_tenant(run.tenant_id).filter(run=run)
    if before_seq is not None:
        qs = qs.filter(seq__lt=before_seq)
    latest = list(qs.order_by("-seq")[: turns + 1])
    shown = latest[:turns][::-1]
    return shown, (shown[0].seq if len(latest) > turns and shown else None)


def run_page(run: Run, *, after_seq: int | None = None) -> RunPage:
    """What the run page shows, in a fixed number of queries and bounded work whatever the run's length:
    the latest ``TURNS_SHOWN`` turns, and the spans and tool calls since the first of them.

    With ``after_seq`` (the live poll) the log holds only the turns after it, which the page appends.
    """
    if after_seq is not None:
        messages = list(Message.objects.for_tenant(run.tenant_id).filter(run=run, seq__gt=after_seq).order_by("seq")[:SPANS_SHOWN])
        earlier = None
    else:
        messages, earlier = log_window(run)
    spans_qs = Span.objects.for_tenant(run.tenant_id).filter(run=run)
    calls_qs = ToolCall.objects.for_tenant(run.tenant_id).filter(run=run)
    since = messages[0].created_at if earlier is not None else None
    if after_seq is not None:  # the waterfall of a live update covers the page's window: the latest TURNS_SHOWN turns
        since = (Message.objects.for_tenant(run.tenant_id).filter(run=run).order_by("-seq")
                 .values_list("created_at", flat=True)[TURNS_SHOWN - 1:TURNS_SHOWN].first())
    if since is not None:
        spans_qs, calls_qs = spans_qs.filter(started_at__gte=since), calls_qs.filter(created_at__gte=since)
    spans = list(spans_qs.order_by("-started_at", "-id")[:SPANS_SHOWN])[::-1]
    calls = list(calls_qs.order_by("-created_at", "-id")[:SPANS_SHOWN])[::-1]
    escalations = list(
        run.escalations.filter(tenant_id=run.tenant_id).select_related("decided_by").order_by("requested_at", "id")
    )
    message_flags = {m.response_id: list(m.flags or []) for m in messages if m.response_id}
    call_flags = {c.tool_use_id: list(c.flags or []) for c in calls}
    # The run's flags come from every turn and call: the database returns each distinct non-empty flag list
    # once, not one row per turn (a 2,000-turn run's flags decoded in Python cost more than the rest of the page).
    every_flag = [*Message.objects.for_tenant(run.tenant_id).filter(run=run).exclude(flags=[]).order_by().values_list("flags", flat=True).distinct(),
                  *ToolCall.objects.for_tenant(run.tenant_id).filter(run=run).exclude(flags=[]).order_by().values_list("flags", flat=True).distinct()]
    flags = sorted({f for fl in every_flag for f in (fl or []) if isinstance(f, str)})
    if any(e.kind != hooks.KIND_REVIEW for e in escalations):
        flags.append("gated")
    if any(e.kind == hooks.KIND_REVIEW for e in escalations):
        flags.append("in_review")
    if run.reschedules:
        flags.append("rescheduled")
    last_seq = messages[-1].seq if messages else (after_seq or 0)
    return RunPage(
        run=run,
        log=[LogEntry(message=m, blocks=log_blocks(m.content)) for m in messages],
        waterfall=build_waterfall(spans, message_flags=message_flags, call_flags=call_flags),
        tool_calls=calls,
        escalations=escalations,
        total_tokens=run.input_tokens + run.output_tokens,
        flags=flags,
        earlier_before=earlier,
        last_seq=last_seq,
        appended=after_seq is not None,
        streaming=streaming_turn(run, last_seq),
    )


def earlier_log(run: Run, *, before_seq: int) -> tuple[list[LogEntry], int | None]:
    messages, earlier = log_window(run, before_seq=before_seq)
    return [LogEntry(message=m, blocks=log_blocks(m.content)) for m in messages], earlier


# -- home ------------------------------------------------------------------------------------


def run_counts_today(tenant: Tenant) -> dict[str, int]:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    qs = Run.objects.for_tenant(tenant)
    today = qs.filter(created_at__gte=start).aggregate(
        total=Count("id"),
        succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
        failed=Count("id", filter=Q(status__in=[RunStatus.FAILED, RunStatus.CAPPED])),
    )
    live = qs.filter(status__in=[RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.AWAITING_APPROVAL]).aggregate(
        running=Count("id", filter=Q(status=RunStatus.RUNNING)),
        queued=Count("id", filter=Q(status=RunStatus.QUEUED)),
        awaiting=Count("id", filter=Q(status=RunStatus.AWAITING_APPROVAL)),
    )
    return {**today, **live}
