"""``budgets_export_user_cell(user_id)``: the export's cell for a user the CSV export was not handed a name for
(someone outside the tenant, or no longer in it): the username, else the id, with a formula-looking start
prefixed with ' (budgets/export.py ``_cell``).

A function, not a subquery in the export's SELECT, for the planner's sake: a correlated subquery is costed
as if it ran on every row, though the export calls it only when its name map misses, and that estimate
alone lifted a 400,000-row export past jit_optimize_above_cost (JIT compiling cost ~0.15 s more than it
saved). COST 1 says what it costs where it is used. Not inlined (its body reads a table), so it stays lazy.
"""

from django.conf import settings
from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION budgets_export_user_cell(p_user_id bigint) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE COST 1 AS $fn$
    SELECT CASE WHEN ascii(n) IN (61, 43, 45, 64, 9, 13) THEN '''' || n ELSE n END  -- = + - @ TAB CR
      FROM (SELECT COALESCE(NULLIF(max(u.username), ''), p_user_id::text) AS n FROM {users} u WHERE u.id = p_user_id) AS name
$fn$
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (the demo) exports through Python's csv module
    users = schema_editor.quote_name(apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table)
    schema_editor.execute(FUNCTION.format(users=users))


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP FUNCTION IF EXISTS budgets_export_user_cell(bigint)")


class Migration(migrations.Migration):
    dependencies = [("budgets", "0012_spend_tenant_day_id_index"), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
    operations = [migrations.RunPython(forwards, backwards)]
