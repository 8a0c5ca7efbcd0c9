"""The harness's run store (agentops.harness.store.RunStore) over the runs app's models.

Each method is the statement the harness issued itself before it had this interface, so a step
costs the same round trips (tests/runtime/test_step_statements.py). Registered in RunsConfig.ready().
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Q
from django.db.models.constants import OnConflict
from django.db.models.functions import Coalesce, Now
from django.db.models.sql import InsertQuery

from agentops.harness.store import Control, EventRow, RunRecord, RunStatus, SpanRow, TurnExtras
from agentops.memory import journal
from runs.models import Agent, Message, Run, RunEvent, Span, ToolCall, ToolGrant

# The run's stop flags: cancel, pause, and the agent's or the tenant's kill switch. Read on their own
# (RunStore.control) or RETURNING from the step's fence (add_turn), so both read them alike.
_CONTROL_COLUMNS = ("r.cancel_requested, r.pause_requested, (SELECT a.runs_disabled OR t.runs_disabled FROM runs_agent a, tenants_tenant t"
                    " WHERE a.id = r.agent_id AND t.id = r.tenant_id)")
_CONTROL_SQL = f"SELECT {_CONTROL_COLUMNS} FROM runs_run r WHERE r.id = %s"  # noqa: S608 - fixed column names


def _control_of(row: Sequence[Any]) -> Control:
    return Control(cancel_requested=row[0], pause_requested=row[1], runs_disabled=bool(row[2]))


def _fence_sql(run_id: int, worker_id: str, *, iterations_inc: int = 0, model_used: str | None = None,
               prompt_version_id: int | None = None, flags: list[str] | None = None) -> tuple[str, list[Any]]:
    """PostgreSQL's relaxed fence: the lease UPDATE and ``SET LOCAL synchronous_commit = off`` (two results)."""
    sets = ["lease_expires_at = statement_timestamp() + make_interval(secs => %s)", "heartbeat_at = statement_timestamp()",
            "iterations = iterations + %s"]
    params: list[Any] = [settings.RUN_LEASE_SECONDS, iterations_inc]
    if model_used is not None:
        sets += ["model_used = %s", "prompt_version_id = %s"]
        params += [model_used, prompt_version_id]
    if flags is not None:
        sets.append("flags = %s::jsonb")
        params.append(json.dumps(flags))
    # RETURNING the run's stop flags: add_turn hands them to the next step's control check, which then
    # needs no read of its own.
    sql = (f"UPDATE runs_run r SET {', '.join(sets)} WHERE r.id = %s AND r.lease_owner = %s "  # noqa: S608 - fixed column names
           f"RETURNING {_CONTROL_COLUMNS}; SET LOCAL synchronous_commit = off")
    return sql, [*params, run_id, worker_id]


def _lease_duration() -> timedelta:
    return timedelta(seconds=settings.RUN_LEASE_SECONDS)


class RunStore:
    # -- the lease -------------------------------------------------------------------
    def acquire(self, run_id: int, worker_id: str) -> Run | None:
        leasable = Q(lease_owner="") | Q(lease_expires_at__lt=Now()) | Q(lease_owner=worker_id)
        due = Q(not_before__isnull=True) | Q(not_before__lte=Now())
        updated = (
            Run.unscoped.filter(leasable, due, pk=run_id, status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            .update(
                lease_owner=worker_id,
                lease_expires_at=Now() + _lease_duration(),
                heartbeat_at=Now(),
                status=RunStatus.RUNNING,
                attempt=F("attempt") + 1,
                started_at=Coalesce(F("started_at"), Now()),
                not_before=None,
            )
        )
        if updated != 1:
            return None
        return Run.unscoped.select_related("agent", "tenant", "tenant__tier", "submitted_by", "api_key").get(pk=run_id)

    def fence(self, run_id: int, worker_id: str, **fields: object) -> bool:
        renewed = Run.unscoped.filter(pk=run_id, lease_owner=worker_id).update(
            lease_expires_at=Now() + _lease_duration(), heartbeat_at=Now(), **fields
        )
        return renewed == 1

    def fence_relaxed(self, run_id: int, worker_id: str, *, iterations_inc: int = 0, model_used: str | None = None,
                      prompt_version_id: int | None = None, flags: list[str] | None = None) -> bool:
        # On PostgreSQL the fence and ``SET LOCAL synchronous_commit = off`` travel as one simple
        # query; elsewhere it is the plain fence.
        if connection.vendor != "postgresql":
            fields: dict[str, object] = {}
            if iterations_inc:
                fields["iterations"] = F("iterations") + iterations_inc
            if model_used is not None:
                fields.update(model_used=model_used, prompt_version_id=prompt_version_id)
            if flags is not None:
                fields["flags"] = flags
            return self.fence(run_id, worker_id, **fields)
        sql, params = _fence_sql(run_id, worker_id, iterations_inc=iterations_inc, model_used=model_used,
                                 prompt_version_id=prompt_version_id, flags=flags)
        with connection.cursor() as cur:
            cur.execute(sql, params)
            return cur.rowcount == 1

    def release(self, run_id: int, worker_id: str, *, unless_stop_requested: bool = False, count_reschedule: bool = False,
                **fields: object) -> bool:
        qs = Run.unscoped.filter(pk=run_id, lease_owner=worker_id)
        if unless_stop_requested:
            qs = qs.filter(cancel_requested=False, pause_requested=False)
        if count_reschedule:
            fields["reschedules"] = F("reschedules") + 1
        return qs.update(lease_owner="", lease_expires_at=None, **fields) == 1

    def holds_lease(self, run_id: int, worker_id: str) -> bool:
        return Run.unscoped.filter(pk=run_id, lease_owner=worker_id).exists()

    # -- the run row -----------------------------------------------------------------
    def control(self, run_id: int) -> Control:
        if connection.vendor == "postgresql":
            # Read every step, so raw: the ORM spent ~0.5 ms of Python building this join (issue 14).
            with connection.cursor() as cur:
                cur.execute(_CONTROL_SQL, [run_id])
                found = cur.fetchone()
            if found is None:
                raise Run.DoesNotExist(run_id)
            return _control_of(found)
        row = (
            Run.unscoped.filter(pk=run_id)
            .values("cancel_requested", "pause_requested", "agent__runs_disabled", "tenant__runs_disabled")
            .get()
        )
        return Control(cancel_requested=row["cancel_requested"], pause_requested=row["pause_requested"],
                       runs_disabled=row["agent__runs_disabled"] or row["tenant__runs_disabled"])

    def attempt(self, run_id: int) -> int:
        row = Run.unscoped.filter(pk=run_id).values("attempt").first()
        return row["attempt"] if row else 0

    def reschedules(self, run_id: int) -> int:
        return Run.unscoped.filter(pk=run_id).values_list("reschedules", flat=True).get()

    def set_trace_id(self, run_id: int, trace_id: str) -> None:
        Run.unscoped.filter(pk=run_id, trace_id="").update(trace_id=trace_id)

    def set_flags(self, run_id: int, flags: list[str]) -> None:
        Run.unscoped.filter(pk=run_id).update(flags=flags)

    # -- the log and the ledger --------------------------------------------------------
    def messages(self, run_id: int) -> list[Message]:
        return list(Message.unscoped.filter(run_id=run_id).order_by("seq"))

    def add_message(self, run: RunRecord, *, seq: int, role: str, content: list[dict[str, Any]], **fields: Any) -> Message:
        return Message.unscoped.create(tenant_id=run.tenant_id, run_id=run.pk, seq=seq, role=role, content=content, **fields)

    def add_turn(self, run: RunRecord, *, seq: int, role: str, content: list[dict[str, Any]], fields: dict[str, Any],
                 tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), events: Iterable[EventRow] = (),
                 spans: Iterable[SpanRow] = (), fence: tuple[str, dict[str, Any]] | None = None,
                 before: Sequence[tuple[str, Sequence[Any]]] = (), extras: TurnExtras | None = None) -> Message | None:
        """:meth:`fence_relaxed` (``fence``: the worker id and its keyword arguments), the ``before``
        statements, :meth:`add_message` and :meth:`add_rows` in one round trip on PostgreSQL (issue 14):
        the fence, the step's settlement, the turn's INSERT … RETURNING id, then the step's rows. None
        when the fence failed: the caller rolls back (the statements after it ran, and go with it)."""
        message = Message(tenant_id=run.tenant_id, run_id=run.pk, seq=seq, role=role, content=content, **fields)
        statements = self._row_inserts(run, tool_calls, events, spans)
        if connection.vendor != "postgresql":
            if fence is not None and not self.fence_relaxed(run.pk, fence[0], **fence[1]):
                return None
            for sql, params in before:
                with connection.cursor() as cur:
                    cur.execute(sql, params)
                    if extras is not None:
                        extras.results.append(cur.fetchall() if cur.description else [])
            message.save(force_insert=True, using="default")
            self._insert_rows(statements)
            return message
        sql, params = _insert_sql(Message, [message], None)
        statements.insert(0, (Message, [message], f'{sql} RETURNING "{Message._meta.pk.column}"', params))
        lead: list[tuple[str, Sequence[Any]]] = [_fence_sql(run.pk, fence[0], **fence[1])] if fence is not None else []
        lead += before
        with connection.cursor() as cur:
            cur.execute("; ".join([*(q for q, _ in lead), *(s[2] for s in statements)]),
                        [*(p for _, ps in lead for p in ps), *(p for s in statements for p in s[3])])
            if fence is not None:
                # Results in order: the fence's UPDATE … RETURNING, its SET LOCAL, the ``before``
                # statements, then the turn's RETURNING.
                found = cur.fetchone()
                if found is None:
                    return None
                if extras is not None:
                    extras.control = _control_of(found)
                cur.nextset()
                cur.nextset()
            for _ in before:
                rows = cur.fetchall() if cur.description else []
                if extras is not None:
                    extras.results.append(rows)
                cur.nextset()
            message.pk = cur.fetchone()[0]
        message._state.adding, message._state.db = False, "default"
        return message

    def tool_calls(self, run_id: int, tool_use_ids: Sequence[str]) -> dict[str, ToolCall]:
        return {c.tool_use_id: c for c in ToolCall.unscoped.filter(run_id=run_id, tool_use_id__in=tool_use_ids)}

    def record_tool_call(self, run: RunRecord, tool_use_id: str, fields: dict[str, Any]) -> None:
        call = ToolCall(tenant_id=run.tenant_id, run_id=run.pk, tool_use_id=tool_use_id, **fields)
        # One INSERT … ON CONFLICT (run, tool_use_id) DO UPDATE: the idempotency key decides.
        ToolCall.unscoped.bulk_create([call], update_conflicts=True, unique_fields=["run", "tool_use_id"], update_fields=list(fields))

    def record_tool_calls(self, run: RunRecord, calls: Sequence[tuple[str, dict[str, Any]]]) -> None:
        self.add_rows(run, tool_calls=calls)

    def add_events(self, run: RunRecord, events: Iterable[EventRow]) -> None:
        self.add_rows(run, events=events)

    def add_spans(self, run: RunRecord, spans: Iterable[SpanRow]) -> None:
        self.add_rows(run, spans=spans)

    def add_rows(self, run: RunRecord, *, tool_calls: Sequence[tuple[str, dict[str, Any]]] = (), events: Iterable[EventRow] = (),
                 spans: Iterable[SpanRow] = ()) -> None:
        """One INSERT per table, sent to PostgreSQL together in one round trip (issue 14: a step's
        ledger rows, events and spans cost one statement, not three)."""
        self._insert_rows(self._row_inserts(run, tool_calls, events, spans))

    @staticmethod
    def _row_inserts(run: RunRecord, tool_calls: Sequence[tuple[str, dict[str, Any]]], events: Iterable[EventRow],
                     spans: Iterable[SpanRow]) -> list[tuple[Any, list[Any], str, tuple[Any, ...]]]:
        """One (model, rows, SQL, params) per table with rows: the statements ``add_rows`` sends."""
        inserts: list[tuple[Any, list[Any], list[str] | None]] = []  # (model, rows, ledger fields to update on conflict)
        by_fields: dict[tuple[str, ...], list[ToolCall]] = {}
        for tool_use_id, fields in tool_calls:
            by_fields.setdefault(tuple(fields), []).append(ToolCall(tenant_id=run.tenant_id, run_id=run.pk, tool_use_id=tool_use_id, **fields))
        inserts += [(ToolCall, rows, list(names)) for names, rows in by_fields.items()]
        event_rows = [RunEvent(tenant_id=run.tenant_id, run_id=run.pk, type=e.type, data=e.data, at=e.at) for e in events]
        span_rows = [Span(tenant_id=run.tenant_id, run_id=run.pk, trace_id=s.trace_id, span_id=s.span_id, parent_span_id=s.parent_span_id,
                          name=s.name, started_at=s.started_at, ended_at=s.ended_at, duration_ms=s.duration_ms, attributes=s.attributes,
                          status=s.status) for s in spans]
        inserts += [(model, rows, None) for model, rows in ((RunEvent, event_rows), (Span, span_rows)) if rows]
        return [(model, rows, *_insert_sql(model, rows, update)) for model, rows, update in inserts]

    @staticmethod
    def _insert_rows(statements: list[tuple[Any, list[Any], str, tuple[Any, ...]]]) -> None:
        if not statements:
            return
        if connection.vendor != "postgresql" or len(statements) < 2:
            for _model, _rows, sql, params in statements:
                with connection.cursor() as cur:
                    cur.execute(sql, params)
            return
        with connection.cursor() as cur:
            cur.execute("; ".join(s[2] for s in statements), [p for s in statements for p in s[3]])

    # -- grants ------------------------------------------------------------------------
    def grants(self, run: RunRecord, tool_names: Sequence[str]) -> list[ToolGrant]:
        return list(ToolGrant.objects.for_tenant(run.tenant_id).filter(
            Q(agent__isnull=True) | Q(agent_id=run.agent_id),
            Q(role="") | Q(role=run.submitter_role),
            tool_name__in=tool_names,
        ))


def _insert_sql(model: Any, rows: list[Any], update_fields: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of ``bulk_create(rows)`` (with ``update_conflicts`` on the ledger's
    key when ``update_fields`` is given), compiled by Django but not executed: field conversions
    and ``auto_now_add`` apply as in bulk_create; no RETURNING (the ids are not needed)."""
    key = (model, tuple(update_fields) if update_fields else None)
    if len(rows) == 1 and key in _ONE_ROW:
        sql, fields = _ONE_ROW[key]
        values = [field.pre_save(rows[0], True) for field in fields]
        if not any(hasattr(v, "resolve_expression") for v in values):
            return sql, tuple(field.get_db_prep_save(v, connection=connection) for field, v in zip(fields, values, strict=True))
    opts = model._meta
    query = InsertQuery(
        model,
        on_conflict=OnConflict.UPDATE if update_fields else None,
        update_fields=[opts.get_field(name) for name in update_fields] if update_fields else None,
        unique_fields=[opts.get_field("run"), opts.get_field("tool_use_id")] if update_fields else None,
    )
    query.insert_values([f for f in opts.concrete_fields if not f.generated and not f.primary_key], rows, raw=False)
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    fields = list(query.fields)
    if len(rows) == 1 and f"VALUES ({', '.join(['%s'] * len(fields))})" in sql:
        # A step's turn, event and span are one row each: Django's SQL for one row is the same every time
        # (plain placeholders), so later rows only convert their values (issue 14: ~0.4 ms a step).
        _ONE_ROW[key] = (sql, fields)
    return sql, tuple(params)


# (model, ledger fields to update on conflict) -> the one-row INSERT and its fields, as Django compiled them.
_ONE_ROW: dict[tuple[Any, tuple[str, ...] | None], tuple[str, list[Any]]] = {}


def register_memory_hooks() -> None:
    """What agentops.memory (a floor below) asks of runs: the failure journal's pages name agents."""
    journal.register_agent_names(agent_names)


def agent_names(tenant_id: int, ids: Iterable[int] | None = None) -> dict[int, str]:
    """The tenant's agents by id (the failure journal's pages name them; agentops.memory sits below runs)."""
    qs = Agent.objects.for_tenant(tenant_id)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return dict(qs.values_list("pk", "name"))
