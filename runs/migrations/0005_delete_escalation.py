from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0004_outcome_unknown'),
    ]

    # Escalation moved to the escalations app. State only: the table (runs_escalation) and its rows
    # stay where they are; escalations/0001 takes the model over with db_table="runs_escalation".
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='Escalation')],
            database_operations=[],
        ),
    ]
