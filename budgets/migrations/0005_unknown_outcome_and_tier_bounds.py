"""SpendEntry.unknown_outcome (a crashed call charged at its worst case, flagged for finance), and
budgets_reserve3, which replaces 0004's budgets_reserve2:

* every cap is clamped to the tier's limit at read time (``LEAST(override, tier)``), so a row
  written before the bounds were enforced cannot lift a cap past the tier;
* a model must be allowed by the tier's list *and* the tenant's (an empty list allows all);
* the fallback model, when given, must be allowed too (``fallback_not_allowed``); the caller
  reserves the worst case of the dearer model.

Same semantics as budgets.services._policy, which the portable (SQLite) path uses.
"""

from django.db import migrations, models

RESERVE = r"""
CREATE OR REPLACE FUNCTION budgets_model_allowed(p_list jsonb, p_model text, p_family text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $fn$
    SELECT p_list IS NULL OR jsonb_typeof(p_list) <> 'array' OR jsonb_array_length(p_list) = 0
           OR p_list ? p_model OR p_list ? p_family
$fn$;

CREATE OR REPLACE FUNCTION budgets_reserve3(
    p_tenant bigint, p_run bigint, p_submitted_by bigint, p_api_key bigint, p_agent bigint,
    p_model text, p_family text, p_fallback text, p_fallback_family text, p_amount numeric, p_day date, p_now timestamptz
) RETURNS TABLE (reservation_id bigint, user_id bigint, refused_scope text, refused_used numeric, refused_cap numeric)
LANGUAGE plpgsql AS $fn$
DECLARE
    v_month date := date_trunc('month', p_day)::date;
    v_user bigint; v_tier_models jsonb; v_tenant_models jsonb;
    c_task numeric; c_uday numeric; c_umonth numeric; c_tmonth numeric;
    v_scopes text[]; v_subjects bigint[]; v_windows date[]; v_caps numeric[];
    v_id bigint; v_scope text; v_used numeric; v_cap numeric; i int;
BEGIN
    SELECT COALESCE(p_submitted_by, k.created_by_id),
           LEAST(COALESCE(ag.task_cost_cap, tc.task_cost_cap, tr.task_cost_cap), tr.task_cost_cap),
           LEAST(COALESCE(uc.user_day_cost_cap, tc.user_day_cost_cap, tr.user_day_cost_cap), tr.user_day_cost_cap),
           LEAST(COALESCE(uc.user_month_cost_cap, tc.user_month_cost_cap, tr.user_month_cost_cap), tr.user_month_cost_cap),
           LEAST(COALESCE(tc.tenant_month_cost_cap, tr.tenant_month_cost_cap), tr.tenant_month_cost_cap),
           tr.allowed_models, tc.allowed_models
      INTO v_user, c_task, c_uday, c_umonth, c_tmonth, v_tier_models, v_tenant_models
      FROM tenants_tenant tn
      JOIN tenants_tier tr ON tr.id = tn.tier_id
      LEFT JOIN tenants_apikey k ON k.id = p_api_key AND k.tenant_id = tn.id
      LEFT JOIN budgets_tenantcaps tc ON tc.tenant_id = tn.id
      LEFT JOIN budgets_usercap uc ON uc.tenant_id = tn.id AND uc.user_id = COALESCE(p_submitted_by, k.created_by_id)
      LEFT JOIN runs_agent ag ON ag.id = p_agent AND ag.tenant_id = tn.id
     WHERE tn.id = p_tenant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no tenant %', p_tenant;
    END IF;
    IF NOT (budgets_model_allowed(v_tier_models, p_model, p_family) AND budgets_model_allowed(v_tenant_models, p_model, p_family)) THEN
        RETURN QUERY SELECT NULL::bigint, v_user, 'model_not_allowed'::text, NULL::numeric, NULL::numeric;
        RETURN;
    END IF;
    IF p_fallback IS NOT NULL AND NOT (budgets_model_allowed(v_tier_models, p_fallback, p_fallback_family)
                                       AND budgets_model_allowed(v_tenant_models, p_fallback, p_fallback_family)) THEN
        RETURN QUERY SELECT NULL::bigint, v_user, 'fallback_not_allowed'::text, NULL::numeric, NULL::numeric;
        RETURN;
    END IF;
    IF v_user IS NULL THEN
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
        INSERT INTO budgets_reservation (tenant_id, run_id, user_id, model, amount, day, status, created_at)
        VALUES (p_tenant, p_run, v_user, p_model, p_amount, p_day, 'open', p_now) RETURNING id INTO v_id;
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
        RETURN QUERY SELECT NULL::bigint, v_user, v_scope, COALESCE(v_used, 0), v_cap;
        RETURN;
    END;
    RETURN QUERY SELECT v_id, v_user, NULL::text, NULL::numeric, NULL::numeric;
END
$fn$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:  # no params: the body contains literal '%'
        cur.execute(RESERVE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cur:
        cur.execute("DROP FUNCTION IF EXISTS budgets_reserve3(bigint, bigint, bigint, bigint, bigint, text, text, text, text, numeric, date, timestamptz)")
        cur.execute("DROP FUNCTION IF EXISTS budgets_model_allowed(jsonb, text, text)")


class Migration(migrations.Migration):
    dependencies = [("budgets", "0004_reserve_with_policy")]
    operations = [
        migrations.AddField(
            model_name="spendentry",
            name="unknown_outcome",
            field=models.BooleanField(db_default=False, default=False, help_text="Worst case charged: the call's outcome is unknown."),
        ),
        migrations.RunPython(forwards, backwards),
    ]
