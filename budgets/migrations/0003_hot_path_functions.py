"""PostgreSQL functions for the reservation hot path: one round trip per reserve / settle / release.

Each runs the same statements, in the same lock order, as the portable Python path in
budgets/services.py (used on SQLite): reservation row first, then the counters in scope order
(task, user_day, user_month, tenant_month). A refused reservation is undone by the function's own
sub-block (a savepoint), so it never aborts a caller's surrounding transaction.
"""

from django.db import migrations

RESERVE = r"""
CREATE OR REPLACE FUNCTION budgets_reserve(
    p_tenant bigint, p_run bigint, p_user bigint, p_model text, p_amount numeric, p_day date, p_now timestamptz,
    p_cap_task numeric, p_cap_uday numeric, p_cap_umonth numeric, p_cap_tmonth numeric
) RETURNS TABLE (reservation_id bigint, refused_scope text, refused_used numeric, refused_cap numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_month date := date_trunc('month', p_day)::date;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; v_caps numeric[];
    v_id bigint; v_scope text; v_used numeric; v_cap numeric; i int;
BEGIN
    IF p_user IS NULL THEN
        v_scopes := ARRAY['task', 'tenant_month'];
        v_subjects := ARRAY[p_run, p_tenant];
        v_windows := ARRAY['2000-01-01'::date, v_month];
        v_caps := ARRAY[p_cap_task, p_cap_tmonth];
    ELSE
        v_scopes := ARRAY['task', 'user_day', 'user_month', 'tenant_month'];
        v_subjects := ARRAY[p_run, p_user, p_user, p_tenant];
        v_windows := ARRAY['2000-01-01'::date, p_day, v_month, v_month];
        v_caps := ARRAY[p_cap_task, p_cap_uday, p_cap_umonth, p_cap_tmonth];
    END IF;
    BEGIN
        INSERT INTO budgets_reservation (tenant_id, run_id, user_id, model, amount, day, status, created_at)
        VALUES (p_tenant, p_run, p_user, p_model, p_amount, p_day, 'open', p_now) RETURNING id INTO v_id;
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
        RETURN QUERY SELECT NULL::bigint, v_scope, COALESCE(v_used, 0), v_cap;
        RETURN;
    END;
    RETURN QUERY SELECT v_id, NULL::text, NULL::numeric, NULL::numeric;
END
$fn$;
"""

SETTLE = r"""
CREATE OR REPLACE FUNCTION budgets_settle(
    p_res bigint, p_status text, p_model text, p_cost numeric, p_in bigint, p_out bigint, p_w5 bigint, p_w1h bigint,
    p_read bigint, p_response_id text, p_now timestamptz
) RETURNS TABLE (entry_id bigint, existing boolean, c_scope text, c_subject bigint, c_window date, c_spent numeric, c_cap numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    r record; v_unreserve numeric; v_entry bigint; v_agent bigint; v_pv bigint; v_month date;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; i int; v_spent numeric; v_cap numeric;
    v_settle boolean := p_status = 'settled';
BEGIN
    UPDATE budgets_reservation SET status = p_status, closed_at = p_now WHERE id = p_res AND status = 'open'
    RETURNING amount, run_id, user_id, day, tenant_id INTO r;
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
        SELECT amount, run_id, user_id, day, tenant_id INTO r FROM budgets_reservation WHERE id = p_res;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no reservation %', p_res;
        END IF;
        v_unreserve := 0;
    END IF;
    v_month := date_trunc('month', r.day)::date;
    IF v_settle THEN
        SELECT agent_id, prompt_version_id INTO v_agent, v_pv FROM runs_run WHERE id = r.run_id;
        INSERT INTO budgets_spendentry (tenant_id, run_id, reservation_id, response_id, user_id, agent_id, prompt_version_id,
            model, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost, day, at, is_demo)
        VALUES (r.tenant_id, r.run_id, p_res, p_response_id, r.user_id, v_agent, v_pv, p_model, p_in, p_out, p_w5, p_w1h,
            p_read, p_cost, r.day, p_now, false)
        RETURNING id INTO v_entry;
        UPDATE runs_run SET cost = cost + p_cost, input_tokens = input_tokens + p_in + p_w5 + p_w1h + p_read,
            output_tokens = output_tokens + p_out WHERE id = r.run_id;
        INSERT INTO budgets_dailyrollup AS d (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo, calls, cost,
            input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens)
        VALUES (r.tenant_id, r.day, p_model, COALESCE(v_agent, 0), COALESCE(r.user_id, 0), COALESCE(v_pv, 0), false, 1, p_cost,
            p_in, p_out, p_w5, p_w1h, p_read)
        ON CONFLICT (tenant_id, day, model, agent_id, user_id, prompt_version_id, is_demo) DO UPDATE SET
            calls = d.calls + 1, cost = d.cost + excluded.cost, input_tokens = d.input_tokens + excluded.input_tokens,
            output_tokens = d.output_tokens + excluded.output_tokens,
            cache_write_5m_tokens = d.cache_write_5m_tokens + excluded.cache_write_5m_tokens,
            cache_write_1h_tokens = d.cache_write_1h_tokens + excluded.cache_write_1h_tokens,
            cache_read_tokens = d.cache_read_tokens + excluded.cache_read_tokens;
    ELSE
        p_cost := 0;
    END IF;
    IF r.user_id IS NULL THEN
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
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (local demo) uses the portable Python path
    with schema_editor.connection.cursor() as cur:  # no params: the bodies contain literal '%'
        cur.execute(RESERVE)
        cur.execute(SETTLE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP FUNCTION IF EXISTS budgets_reserve(bigint, bigint, bigint, text, numeric, date, timestamptz, numeric, numeric, numeric, numeric)")
    schema_editor.execute("DROP FUNCTION IF EXISTS budgets_settle(bigint, text, text, numeric, bigint, bigint, bigint, bigint, bigint, text, timestamptz)")


class Migration(migrations.Migration):
    dependencies = [("budgets", "0002_seed_model_prices"), ("runs", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
