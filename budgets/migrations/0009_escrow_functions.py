"""The hot path with escrow leases (budgets.escrow); replaces budgets_reserve3 and budgets_settle.

* ``budgets_reserve4`` is budgets_reserve3 with ``p_lease`` (and it also answers whether the tenant
  has ``hot_cap_escrow``, so a worker learns it without a query of its own): when a lease is given, the call is
  reserved against the lease's slice (the worker checked its local balance) — the function fences
  on the lease (open, not expired, same user and day: ``FOR SHARE``, so a concurrent close waits
  for this reservation to commit and then sees it) and locks only the run's own task counter;
  the shared counters (user day, user month, tenant month) are not touched.
* ``budgets_settle2`` is budgets_settle for both kinds: a reservation still attached to its lease
  charges only the task counter (the lease's counters learn the spend when it closes), and its
  rollup goes to shard ``1 + lease % 16`` so a hot tenant's workers do not share one rollup row.
* ``budgets_escrow_checkout`` moves a slice of the shared counters' headroom into a lease, in
  one transaction, with the same conditional-UPDATE guarantee as a per-call reservation.
* ``budgets_escrow_close`` closes a lease: what its calls settled moves to ``spent``, calls still
  open stay reserved (detached: they settle as plain reservations), the rest is freed.

Lock order everywhere: lease row, then reservation rows, then counters in scope order.
"""

from importlib import import_module

from django.db import migrations

POLICY = r"""
    SELECT COALESCE(p_submitted_by, k.created_by_id),
           LEAST(COALESCE(ag.task_cost_cap, tc.task_cost_cap, tr.task_cost_cap), tr.task_cost_cap),
           LEAST(COALESCE(uc.user_day_cost_cap, tc.user_day_cost_cap, tr.user_day_cost_cap), tr.user_day_cost_cap),
           LEAST(COALESCE(uc.user_month_cost_cap, tc.user_month_cost_cap, tr.user_month_cost_cap), tr.user_month_cost_cap),
           LEAST(COALESCE(tc.tenant_month_cost_cap, tr.tenant_month_cost_cap), tr.tenant_month_cost_cap),
           tr.allowed_models, tc.allowed_models, COALESCE(tc.hot_cap_escrow, false)
      INTO v_user, c_task, c_uday, c_umonth, c_tmonth, v_tier_models, v_tenant_models, v_hot
      FROM tenants_tenant tn
      JOIN tenants_tier tr ON tr.id = tn.tier_id
      LEFT JOIN tenants_apikey k ON k.id = p_api_key AND k.tenant_id = tn.id
      LEFT JOIN budgets_tenantcaps tc ON tc.tenant_id = tn.id
      LEFT JOIN budgets_usercap uc ON uc.tenant_id = tn.id AND uc.user_id = COALESCE(p_submitted_by, k.created_by_id)
      LEFT JOIN runs_agent ag ON ag.id = p_agent AND ag.tenant_id = tn.id
     WHERE tn.id = p_tenant;
"""

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION budgets_reserve4(
    p_lease bigint, p_tenant bigint, p_run bigint, p_submitted_by bigint, p_api_key bigint, p_agent bigint,
    p_model text, p_family text, p_fallback text, p_fallback_family text, p_amount numeric, p_day date, p_now timestamptz
) RETURNS TABLE (reservation_id bigint, user_id bigint, refused_scope text, refused_used numeric, refused_cap numeric, hot boolean)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_month date := date_trunc('month', p_day)::date;
    v_user bigint; v_tier_models jsonb; v_tenant_models jsonb; v_hot boolean;
    c_task numeric; c_uday numeric; c_umonth numeric; c_tmonth numeric;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; v_caps numeric[];
    v_id bigint; v_scope text; v_used numeric; v_cap numeric; i int;
BEGIN
    __POLICY__
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tenant %', p_tenant;
    END IF;
    IF NOT (budgets_model_allowed(v_tier_models, p_model, p_family) AND budgets_model_allowed(v_tenant_models, p_model, p_family)) THEN
        RETURN QUERY SELECT NULL::bigint, v_user, 'model_not_allowed'::text, NULL::numeric, NULL::numeric, v_hot;
        RETURN;
    END IF;
    IF p_fallback IS NOT NULL AND NOT (budgets_model_allowed(v_tier_models, p_fallback, p_fallback_family)
                                       AND budgets_model_allowed(v_tenant_models, p_fallback, p_fallback_family)) THEN
        RETURN QUERY SELECT NULL::bigint, v_user, 'fallback_not_allowed'::text, NULL::numeric, NULL::numeric, v_hot;
        RETURN;
    END IF;
    IF p_lease IS NOT NULL THEN
        -- The fence: a closed or expired lease (reclaimed from a worker that stalled) is gone.
        PERFORM 1 FROM budgets_escrowlease l WHERE l.id = p_lease AND l.tenant_id = p_tenant AND l.status = 'open'
           AND l.expires_at > p_now AND l.day = p_day AND l.user_id IS NOT DISTINCT FROM v_user FOR SHARE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT NULL::bigint, v_user, 'escrow_lease_gone'::text, NULL::numeric, NULL::numeric, v_hot;
            RETURN;
        END IF;
        v_scopes := ARRAY['task'];
        v_subjects := ARRAY[p_run];
        v_windows := ARRAY['2000-01-01'::date];
        v_caps := ARRAY[c_task];
    ELSIF v_user IS NULL THEN
        v_scopes := ARRAY['task', 'tenant_month'];
        v_subjects := ARRAY[p_run, p_tenant];
        v_windows := ARRAY['2000-01-01'::date, v_month];
        v_caps := ARRAY[c_task, c_tmonth];
    ELSE
        v_scopes := ARRAY['task', 'user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[p_run, v_user, v_user, p_tenant];
        v_windows := ARRAY['2000-01-01'::date, p_day, v_month, v_month];
        v_caps := ARRAY[c_task, c_uday, c_umonth, c_tmonth];
    END IF;
    BEGIN
        INSERT INTO budgets_reservation (tenant_id, run_id, user_id, model, amount, day, status, created_at, escrow_lease_id)
        VALUES (p_tenant, p_run, v_user, p_model, p_amount, p_day, 'open', p_now, p_lease) RETURNING id INTO v_id;
        FOR i IN 1 .. array_length(v_scopes, 1) LOOP
            UPDATE budgets_capcounter SET reserved = reserved + p_amount, cap = v_caps[i]
             WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i]
               AND window_start = v_windows[i] AND spent + reserved + p_amount <= v_caps[i];
            IF NOT FOUND THEN
                INSERT INTO budgets_capcounter (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
                VALUES (p_tenant, v_scopes[i], v_subjects[i], v_windows[i], 0, 0, v_caps[i])
                ON CONFLICT (tenant_id, scope, subject_id, window_start) DO NOTHING;
                UPDATE budgets_capcounter SET reserved = reserved + p_amount, cap = v_caps[i]
                 WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i]
                   AND window_start = v_windows[i] AND spent + reserved + p_amount <= v_caps[i];
                IF NOT FOUND THEN
                    v_scope := v_scopes[i];
                    v_cap := v_caps[i];
                    SELECT spent + reserved INTO v_used FROM budgets_capcounter
                     WHERE tenant_id = p_tenant AND scope = v_scopes[i] AND subject_id = v_subjects[i]
                       AND window_start = v_windows[i];
                    RAISE EXCEPTION 'budget refused' USING ERRCODE = 'BG001';
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'BG001' THEN
        RETURN QUERY SELECT NULL::bigint, v_user, v_scope, COALESCE(v_used, 0), v_cap, v_hot;
        RETURN;
    END;
    RETURN QUERY SELECT v_id, v_user, NULL::text, NULL::numeric, NULL::numeric, v_hot;
END
$fn$;

CREATE OR REPLACE FUNCTION budgets_settle2(
    p_res bigint, p_status text, p_model text, p_cost numeric, p_in bigint, p_out bigint, p_w5 bigint, p_w1h bigint,
    p_read bigint, p_response_id text, p_now timestamptz
) RETURNS TABLE (entry_id bigint, existing boolean, c_scope text, c_subject bigint, c_window date, c_spent numeric, c_cap numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    r record; v_unreserve numeric; v_entry bigint; v_agent bigint; v_pv bigint; v_month date; v_shard smallint := 0;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; i int; v_spent numeric; v_cap numeric;
    v_settle boolean := p_status = 'settled';
BEGIN
    UPDATE budgets_reservation SET status = p_status, closed_at = p_now WHERE id = p_res AND status = 'open'
    RETURNING amount, run_id, user_id, day, tenant_id, escrow_lease_id INTO r;
    IF FOUND THEN
        v_unreserve := r.amount;
    ELSE
        IF NOT v_settle THEN
            RETURN;  -- releasing a closed reservation: nothing to do
        END IF;
        SELECT e.id INTO v_entry FROM budgets_spendentry e WHERE e.reservation_id = p_res;
        IF FOUND THEN
            RETURN QUERY SELECT v_entry, true, NULL::text, NULL::bigint, NULL::date, NULL::numeric, NULL::numeric;
            RETURN;
        END IF;
        -- Released by the reconciler, but the call did happen: record it, free nothing.
        SELECT amount, run_id, user_id, day, tenant_id, escrow_lease_id INTO r FROM budgets_reservation WHERE id = p_res;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no reservation %', p_res;
        END IF;
        v_unreserve := 0;
        -- A released call that did happen, after its lease closed: the lease's counters are
        -- charged directly, as for a plain reservation.
        IF r.escrow_lease_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM budgets_escrowlease l WHERE l.id = r.escrow_lease_id AND l.status = 'open') THEN
            r.escrow_lease_id := NULL;
        END IF;
    END IF;
    v_month := date_trunc('month', r.day)::date;
    IF r.escrow_lease_id IS NOT NULL THEN
        v_shard := 1 + (r.escrow_lease_id % 16);
    END IF;
    IF v_settle THEN
        SELECT agent_id, prompt_version_id INTO v_agent, v_pv FROM runs_run WHERE id = r.run_id;
        INSERT INTO budgets_spendentry (tenant_id, run_id, reservation_id, response_id, user_id, agent_id, prompt_version_id,
            model, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost, day, at, is_demo)
        VALUES (r.tenant_id, r.run_id, p_res, p_response_id, r.user_id, v_agent, v_pv, p_model, p_in, p_out, p_w5, p_w1h,
            p_read, p_cost, r.day, p_now, false)
        RETURNING id INTO v_entry;
        UPDATE runs_run SET cost = cost + p_cost, input_tokens = input_tokens + p_in + p_w5 + p_w1h + p_read,
            output_tokens = output_tokens + p_out WHERE id = r.run_id;
        INSERT INTO budgets_dailyrollup AS d (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, shard, calls, cost,
            input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens)
        VALUES (r.tenant_id, r.day, p_model, COALESCE(v_agent, 0), COALESCE(r.user_id, 0), COALESCE(v_pv, 0), false, v_shard, 1, p_cost,
            p_in, p_out, p_w5, p_w1h, p_read)
        ON CONFLICT (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, shard) DO UPDATE SET
            calls = d.calls + 1, cost = d.cost + excluded.cost, input_tokens = d.input_tokens + excluded.input_tokens,
            output_tokens = d.output_tokens + excluded.output_tokens,
            cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
            cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
            cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens;
    ELSE
        p_cost := 0;
    END IF;
    IF r.escrow_lease_id IS NOT NULL THEN
        -- The lease holds the shared counters' money; it moves this spend there when it closes.
        v_scopes := ARRAY['task'];
        v_subjects := ARRAY[r.run_id];
        v_windows := ARRAY['2000-01-01'::date];
    ELSIF r.user_id IS NULL THEN
        v_scopes := ARRAY['task', 'tenant_month'];
        v_subjects := ARRAY[r.run_id, r.tenant_id];
        v_windows := ARRAY['2000-01-01'::date, v_month];
    ELSE
        v_scopes := ARRAY['task', 'user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[r.run_id, r.user_id, r.user_id, r.tenant_id];
        v_windows := ARRAY['2000-01-01'::date, r.day, v_month, v_month];
    END IF;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        UPDATE budgets_capcounter SET spent = spent + p_cost, reserved = reserved - v_unreserve
         WHERE tenant_id = r.tenant_id AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
        RETURNING spent, cap INTO v_spent, v_cap;
        IF NOT FOUND THEN
            INSERT INTO budgets_capcounter (tenant_id, scope, subject_id, window_start, spent, reserved, cap)
            VALUES (r.tenant_id, v_scopes[i], v_subjects[i], v_windows[i], 0, 0, NULL)
            ON CONFLICT (tenant_id, scope, subject_id, window_start) DO NOTHING;
            UPDATE budgets_capcounter SET spent = spent + p_cost
             WHERE tenant_id = r.tenant_id AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
            RETURNING spent, cap INTO v_spent, v_cap;
        END IF;
        RETURN QUERY SELECT v_entry, false, v_scopes[i], v_subjects[i], v_windows[i], v_spent, v_cap;
    END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION budgets_escrow_checkout(
    p_lease bigint, p_tenant bigint, p_holder text, p_user bigint, p_day date,
    p_cap_uday numeric, p_cap_umonth numeric, p_cap_tmonth numeric,
    p_want numeric, p_min numeric, p_share int, p_now timestamptz, p_expires timestamptz
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
    -- Slices shrink as the cap nears: each holder may take 1 / (share x holders) of what is left.
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
        INSERT INTO budgets_escrowlease (tenant_id, holder, user_id, day, amount, status, created_at, expires_at)
        VALUES (p_tenant, p_holder, p_user, p_day, v_slice, 'open', p_now, p_expires) RETURNING id INTO p_lease;
    ELSE
        UPDATE budgets_escrowlease SET amount = amount + v_slice, expires_at = p_expires WHERE id = p_lease;
    END IF;
    RETURN QUERY SELECT p_lease, v_slice, v_min_room;
END
$fn$;

CREATE OR REPLACE FUNCTION budgets_escrow_close(p_lease bigint, p_now timestamptz, p_expired_only boolean)
RETURNS TABLE (c_scope text, c_subject bigint, c_window date, c_spent numeric, c_cap numeric, lease_spent numeric, lease_freed numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    l record; v_month date; v_open numeric; v_spent numeric; v_freed numeric;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; i int; v_cspent numeric; v_ccap numeric;
BEGIN
    SELECT * INTO l FROM budgets_escrowlease WHERE id = p_lease AND status = 'open'
       AND (NOT p_expired_only OR expires_at <= p_now) FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- Calls still open keep their money reserved on the counters, as plain reservations.
    WITH d AS (UPDATE budgets_reservation SET escrow_lease_id = NULL
                WHERE escrow_lease_id = p_lease AND status = 'open' RETURNING amount)
    SELECT COALESCE(sum(amount), 0) INTO v_open FROM d;
    SELECT COALESCE(sum(e.cost), 0) INTO v_spent FROM budgets_reservation r
      JOIN budgets_spendentry e ON e.reservation_id = r.id WHERE r.escrow_lease_id = p_lease;
    v_freed := l.amount - v_spent - v_open;
    v_month := date_trunc('month', l.day)::date;
    IF l.user_id IS NULL THEN
        v_scopes := ARRAY['tenant_month']; v_subjects := ARRAY[l.tenant_id]; v_windows := ARRAY[v_month];
    ELSE
        v_scopes := ARRAY['user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[l.user_id, l.user_id, l.tenant_id];
        v_windows := ARRAY[l.day, v_month, v_month];
    END IF;
    UPDATE budgets_escrowlease SET status = 'closed', closed_at = p_now, spent = v_spent WHERE id = p_lease;
    FOR i IN 1 .. array_length(v_scopes, 1) LOOP
        UPDATE budgets_capcounter SET spent = spent + v_spent, reserved = reserved - l.amount + v_open
         WHERE tenant_id = l.tenant_id AND scope = v_scopes[i] AND subject_id = v_subjects[i] AND window_start = v_windows[i]
        RETURNING spent, cap INTO v_cspent, v_ccap;
        RETURN QUERY SELECT v_scopes[i], v_subjects[i], v_windows[i], v_cspent, v_ccap, v_spent, v_freed;
    END LOOP;
END
$fn$;
""".replace("__POLICY__", POLICY.strip())


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (local demo) uses the portable Python path, without escrow
    with schema_editor.connection.cursor() as cur:  # no params: the bodies contain literal '%'
        cur.execute(FUNCTIONS)
        cur.execute("DROP FUNCTION IF EXISTS budgets_reserve3(bigint, bigint, bigint, bigint, bigint, text, text, text, text, numeric, date, timestamptz)")
        cur.execute("DROP FUNCTION IF EXISTS budgets_settle(bigint, text, text, numeric, bigint, bigint, bigint, bigint, bigint, text, timestamptz)")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute(import_module("budgets.migrations.0005_unknown_outcome_and_tier_bounds").RESERVE)
        cur.execute(import_module("budgets.migrations.0003_hot_path_functions").SETTLE)
        cur.execute("DROP FUNCTION IF EXISTS budgets_reserve4(bigint, bigint, bigint, bigint, bigint, bigint, text, text, text, text, numeric, date, timestamptz)")
        cur.execute("DROP FUNCTION IF EXISTS budgets_settle2(bigint, text, text, numeric, bigint, bigint, bigint, bigint, bigint, text, timestamptz)")
        cur.execute("DROP FUNCTION IF EXISTS budgets_escrow_checkout(bigint, bigint, text, bigint, date, numeric, numeric, numeric, numeric, numeric, int, timestamptz, timestamptz)")
        cur.execute("DROP FUNCTION IF EXISTS budgets_escrow_close(bigint, timestamptz, boolean)")


class Migration(migrations.Migration):
    dependencies = [("budgets", "0008_escrow_leases")]
    operations = [migrations.RunPython(forwards, backwards)]
