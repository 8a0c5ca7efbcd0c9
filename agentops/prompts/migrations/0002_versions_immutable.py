"""On PostgreSQL, the database itself refuses to change a prompt version: an UPDATE of a row of
prompts_promptversion raises, whoever sends it (the ORM's save() refuses first; this catches
queryset.update() and raw SQL). Deleting stays possible so a tenant's rows can be removed."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION prompts_version_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'prompt versions are immutable (version %)', OLD.id USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER prompts_version_immutable BEFORE UPDATE ON prompts_promptversion
    FOR EACH ROW EXECUTE FUNCTION prompts_version_immutable();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS prompts_version_immutable ON prompts_promptversion;
DROP FUNCTION IF EXISTS prompts_version_immutable();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("prompts", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
