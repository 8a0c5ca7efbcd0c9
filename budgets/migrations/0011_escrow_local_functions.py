"""Escrow reservations in the holder's memory (budgets.escrow): the functions for the lease path.

* ``budgets_escrow_checkout2`` is budgets_escrow_checkout that also records, on the lease, the
  holder's run and model and the largest worst case it lets a call reserve (``max_call``).
* ``budgets_settle_local`` settles a call reserved against a lease in memory (it has no
  Reservation row): the ledger row, the run's totals, the rollup (sharded by lease), the run's
  task counter and the lease's ``spent`` — no shared row — and commits durably (the call has no
  durable reservation a lost settlement could fall back to). On a lease the reconciler reclaimed
  (the holder stalled past it) the reclaim already charged this call's worst case: that charge
  stands, once (``late_settled``); nothing more is written.
* ``budgets_escrow_close2`` is budgets_escrow_close reading the lease's own ``spent``. A reclaim
  (``p_reclaim``: the lease expired, its holder crashed or stalled) also charges the one call
  the holder may have had in flight, at ``max_call`` — bounded by the slice's unspent part and
  the run's task headroom — as an ``unknown_outcome`` ledger entry.
"""

from importlib import import_module

from django.db import migrations

ROLLUP = r"""
        INSERT INTO budgets_dailyrollup AS d (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, shard, calls, cost,
            input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens)
        VALUES (__T__, __DAY__, __MODEL__, COALESCE(v_agent, 0), COALESCE(__USER__, 0), COALESCE(v_pv, 0), false, v_shard, 1, __COST__,
            __IN__, __OUT__, __W5__, __W1H__, __READ__)
        ON CONFLICT (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, shard) DO UPDATE SET
            calls = d.calls + 1, cost = d.cost + excluded.cost, input_tokens = d.input_tokens + excluded.input_tokens,
            output_tokens = d.output_tokens + excluded.output_tokens,
            cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
            cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
            cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens;
"""


def _rollup(**kw: str) -> str:
    sql = ROLLUP
    for k, v in kw.items():
        sql = sql.replace(f"__{k}__", v)
    return sql


FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION budgets_escrow_checkout2(
    p_lease bigint, p_tenant bigint, p_holder text, p_user bigint, p_day date,
    p_cap_uday numeric, p_cap_umonth numeric, p_cap_tmonth numeric,
    p_want numeric, p_min numeric, p_share int, p_now timestamptz, p_expires timestamptz,
    p_run bigint, p_model text, p_max_call numeric
) RETURNS TABLE (lease_id bigint, added numeric, headroom numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_month date := date_trunc('month', p_day)::date;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; v_caps numeric[];
    v_room numeric; v_min_room numeric; v_active int; v_slice numeric; i int;
BEGIN
    IF p_lease IS NOT NULL THEN
        PERFORM 1 FROM budgets_escrowlease WHERE id = p_lease AND status = 'open' AND expires_at > p_now FOR UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT NULL::bigint, 0::numeric, NULL::numeric;
            RETURN;
        END IF;
    END IF;
    IF p_user IS NULL THEN
        v_scopes := ARRAY['tenant_month']; v_subjects := ARRAY[p_tenant]; v_windows := ARRAY[v_month]; v_caps := ARRAY[p_cap_tmonth];
    ELSE
        v_scopes := ARRAY['user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[p_user, p_user, p_tenant];
        v_windows := ARRAY[p_day, v_month, v_month];
        v_caps := ARRAY[p_cap_uday, p_cap_umonth, p_cap_tmonth];
    END IF;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        INSERT INTO budgets_capcounter (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
        VALUES (p_tenant, v_scopes[i], v_subjects[i], v_windows[i], 0, 0, v_caps[i])
        ON CONFLICT (tenant_id, scope, subject_id, window_start) DO NOTHING;
        SELECT v_caps[i] - spent - reserved INTO v_room FROM budgets_capcounter
         WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
         FOR UPDATE;
        v_min_room := LEAST(v_min_room, v_room);
        IF v_min_room IS NULL THEN v_min_room := v_room; END IF;
    END LOOP;
    SELECT count(*) INTO v_active FROM budgets_escrowlease
     WHERE tenant_id = p_tenant AND status = 'open' AND expires_at > p_now AND (p_lease IS NULL OR id <> p_lease);
    v_slice := trunc(LEAST(p_want, v_min_room / (p_share * (v_active + 1))), 10);
    IF v_slice < p_min OR v_slice <= 0 THEN
        RETURN QUERY SELECT p_lease, 0::numeric, v_min_room;  -- at the edge: per-call reservations
        RETURN;
    END IF;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        UPDATE budgets_capcounter SET reserved = reserved + v_slice, cap = v_caps[i]
         WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
           AND spent + reserved + v_slice <= v_caps[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'escrow checkout lost its headroom';  -- cannot happen: the rows are locked
        END IF;
    END LOOP;
    IF p_lease IS NULL THEN
        INSERT INTO budgets_escrowlease (tenant_id, holder, user_id, day, amount, status, created_at, expires_at, spent,
                                         max_call, run_id, model, late_settled)
        VALUES (p_tenant, p_holder, p_user, p_day, v_slice, 'open', p_now, p_expires, 0, p_max_call, p_run, p_model, false)
        RETURNING id INTO p_lease;
    ELSE
        UPDATE budgets_escrowlease SET amount = amount + v_slice, expires_at = p_expires, run_id = p_run, model = p_model,
               max_call = GREATEST(max_call, p_max_call) WHERE id = p_lease;
    END IF;
    RETURN QUERY SELECT p_lease, v_slice, v_min_room;
END
$fn$;

CREATE OR REPLACE FUNCTION budgets_settle_local(
    p_lease bigint, p_tenant bigint, p_run bigint, p_user bigint, p_day date, p_model text, p_cost numeric,
    p_in bigint, p_out bigint, p_w5 bigint, p_w1h bigint, p_read bigint, p_response_id text, p_unknown boolean, p_now timestamptz,
    p_task_cap numeric
) RETURNS TABLE (entry_id bigint, late boolean, c_scope text, c_subject bigint, c_window date, c_spent numeric, c_cap numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_entry bigint; v_agent bigint; v_pv bigint; v_shard smallint; v_month date := date_trunc('month', p_day)::date;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; i int; v_spent numeric; v_cap numeric;
BEGIN
    -- Durable, even inside the harness's relaxed step commit: this call has no Reservation row
    -- that a lost settlement would fall back to, so its ledger row must survive a crash.
    PERFORM set_config('synchronous_commit', 'on', true);
    UPDATE budgets_escrowlease SET spent = spent + p_cost WHERE id = p_lease AND status = 'open';
    IF FOUND THEN
        v_shard := 1 + (p_lease % 16);
        v_scopes := ARRAY['task']; v_subjects := ARRAY[p_run]; v_windows := ARRAY['2000-01-01'::date];
    ELSE
        -- Reclaimed while this holder stalled: the reclaim charged its one call in flight at the
        -- worst case. This is that call; the charge stands (it is at least this call's cost).
        UPDATE budgets_escrowlease SET late_settled = true
         WHERE id = p_lease AND status = 'closed' AND NOT late_settled AND reclaim_entry_id IS NOT NULL
        RETURNING reclaim_entry_id INTO v_entry;
        IF FOUND THEN
            RETURN QUERY SELECT v_entry, true, NULL::text, NULL::bigint, NULL::date, NULL::numeric, NULL::numeric;
            RETURN;
        END IF;
        RAISE EXCEPTION 'escrow lease % closed with a call of its holder unaccounted', p_lease;
    END IF;
    UPDATE runs_run SET cost = cost + p_cost, input_tokens = input_tokens + p_in + p_w5 + p_w1h + p_read,
        output_tokens = output_tokens + p_out WHERE id = p_run RETURNING agent_id, prompt_version_id INTO v_agent, v_pv;
    INSERT INTO budgets_spendentry (tenant_id, run_id, reservation_id, response_id, user_id, agent_id, prompt_version_id,
        model, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost, day, at, is_demo,
        unknown_outcome)
    VALUES (p_tenant, p_run, NULL, p_response_id, p_user, v_agent, v_pv, p_model, p_in, p_out, p_w5, p_w1h,
        p_read, p_cost, p_day, p_now, false, p_unknown)
    RETURNING id INTO v_entry;
    __ROLLUP_SETTLE__
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        -- The task cap is recorded on the counter (a reclaim's charge stays within it).
        UPDATE budgets_capcounter SET spent = spent + p_cost, cap = COALESCE(p_task_cap, cap)
         WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
        RETURNING spent, cap INTO v_spent, v_cap;
        IF NOT FOUND THEN
            INSERT INTO budgets_capcounter (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
            VALUES (p_tenant, v_scopes[i], v_subjects[i], v_windows[i], p_cost, 0, p_task_cap)
            ON CONFLICT (tenant_id, scope, subject_id, window_start) DO UPDATE SET spent = budgets_capcounter.spent + p_cost
            RETURNING spent, cap INTO v_spent, v_cap;
        END IF;
        RETURN QUERY SELECT v_entry, false, v_scopes[i], v_subjects[i], v_windows[i], v_spent, v_cap;
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION budgets_escrow_close2(p_lease bigint, p_now timestamptz, p_reclaim boolean)
RETURNS TABLE (c_scope text, c_subject bigint, c_window date, c_spent numeric, c_cap numeric, lease_spent numeric,
               lease_freed numeric, reclaim_charge numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    l record; v_month date; v_open numeric; v_spent numeric; v_freed numeric; v_charge numeric := 0; v_room numeric;
    v_entry bigint; v_agent bigint; v_pv bigint; v_shard smallint;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; i int; v_cspent numeric; v_ccap numeric;
BEGIN
    SELECT * INTO l FROM budgets_escrowlease WHERE id = p_lease AND status = 'open'
       AND (NOT p_reclaim OR expires_at <= p_now) FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_shard := 1 + (p_lease % 16);
    -- Leases of budgets_escrow_checkout (before 0011) had a Reservation row per call: those still
    -- open stay reserved as plain reservations; those settled count as the lease's spend.
    WITH d AS (UPDATE budgets_reservation SET escrow_lease_id = NULL
                WHERE escrow_lease_id = p_lease AND status = 'open' RETURNING amount)
    SELECT COALESCE(sum(amount), 0) INTO v_open FROM d;
    SELECT COALESCE(l.spent, 0) + COALESCE(sum(e.cost), 0) INTO v_spent FROM budgets_reservation r
      JOIN budgets_spendentry e ON e.reservation_id = r.id WHERE r.escrow_lease_id = p_lease;
    IF p_reclaim AND l.run_id IS NOT NULL THEN
        -- The holder crashed or stalled: it may have had one call in flight (it runs one job, its
        -- calls one after another), reserved in its memory only. Charge it at its worst case —
        -- never more than the slice has left, nor past the run's task cap.
        v_charge := GREATEST(LEAST(l.max_call, l.amount - v_spent - v_open), 0);
        SELECT cap - spent - reserved INTO v_room FROM budgets_capcounter
         WHERE tenant_id = l.tenant_id AND scope = 'task' AND subject_id = l.run_id AND window_start = '2000-01-01';
        IF v_room IS NOT NULL THEN
            v_charge := GREATEST(LEAST(v_charge, v_room), 0);
        END IF;
    END IF;
    IF v_charge > 0 THEN
        UPDATE runs_run SET cost = cost + v_charge WHERE id = l.run_id RETURNING agent_id, prompt_version_id INTO v_agent, v_pv;
        INSERT INTO budgets_spendentry (tenant_id, run_id, reservation_id, response_id, user_id, agent_id, prompt_version_id,
            model, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost, day, at,
            is_demo, unknown_outcome)
        VALUES (l.tenant_id, l.run_id, NULL, '', l.user_id, v_agent, v_pv, l.model, 0, 0, 0, 0, 0, v_charge, l.day, p_now, false, true)
        RETURNING id INTO v_entry;
        __ROLLUP_RECLAIM__
        UPDATE budgets_capcounter SET spent = spent + v_charge
         WHERE tenant_id = l.tenant_id AND scope = 'task' AND subject_id = l.run_id AND window_start = '2000-01-01';
        IF NOT FOUND THEN
            INSERT INTO budgets_capcounter (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
            VALUES (l.tenant_id, 'task', l.run_id, '2000-01-01', v_charge, 0, NULL)
            ON CONFLICT (tenant_id, scope, subject_id, window_start) DO UPDATE SET spent = budgets_capcounter.spent + v_charge;
        END IF;
        v_spent := v_spent + v_charge;
    END IF;
    v_freed := l.amount - v_spent - v_open;
    v_month := date_trunc('month', l.day)::date;
    IF l.user_id IS NULL THEN
        v_scopes := ARRAY['tenant_month']; v_subjects := ARRAY[l.tenant_id]; v_windows := ARRAY[v_month];
    ELSE
        v_scopes := ARRAY['user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[l.user_id, l.user_id, l.tenant_id];
        v_windows := ARRAY[l.day, v_month, v_month];
    END IF;
    UPDATE budgets_escrowlease SET status = 'closed', closed_at = p_now, spent = v_spent, reclaim_entry_id = v_entry WHERE id = p_lease;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        UPDATE budgets_capcounter SET spent = spent + v_spent, reserved = reserved - l.amount + v_open
         WHERE tenant_id = l.tenant_id AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
        RETURNING spent, cap INTO v_cspent, v_ccap;
        RETURN QUERY SELECT v_scopes[i], v_subjects[i], v_windows[i], v_cspent, v_ccap, v_spent, v_freed, v_charge;
    END LOOP;
END
$fn$;
""".replace(
    "__ROLLUP_SETTLE__",
    _rollup(
        T="p_tenant",
        DAY="p_day",
        MODEL="p_model",
        USER="p_user",
        COST="p_cost",
        IN="p_in",
        OUT="p_out",
        W5="p_w5",
        W1H="p_w1h",
        READ="p_read",
    ).strip(),
).replace(
    "__ROLLUP_RECLAIM__",
    _rollup(
        T="l.tenant_id",
        DAY="l.day",
        MODEL="l.model",
        USER="l.user_id",
        COST="v_charge",
        IN="0",
        OUT="0",
        W5="0",
        W1H="0",
        READ="0",
    ).strip(),
)

DROP = """
DROP FUNCTION IF EXISTS budgets_escrow_checkout2(bigint, bigint, text, bigint, date, numeric, numeric, numeric, numeric, numeric, int,
                                                timestamptz, timestamptz, bigint, text, numeric);
DROP FUNCTION IF EXISTS budgets_settle_local(bigint, bigint, bigint, bigint, date, text, numeric, bigint, bigint, bigint, bigint, bigint,
                                            text, boolean, timestamptz, numeric);
DROP FUNCTION IF EXISTS budgets_escrow_close2(bigint, timestamptz, boolean);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (local demo) uses the portable Python path, without escrow
    with schema_editor.connection.cursor() as cur:  # no params: the bodies contain literal '%'
        cur.execute(FUNCTIONS)
        cur.execute(
            "DROP FUNCTION IF EXISTS budgets_escrow_checkout(bigint, bigint, text, bigint, date, numeric, numeric, numeric, numeric,"
            " numeric, int, timestamptz, timestamptz)"
        )
        cur.execute("DROP FUNCTION IF EXISTS budgets_escrow_close(bigint, timestamptz, boolean)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute(import_module("budgets.migrations.0009_escrow_functions").FUNCTIONS)
        cur.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("budgets", "0010_escrow_local")]
    operations = [migrations.RunPython(forwards, backwards)]
