"""Escalations of kind outcome_unknown (a tool call cut off by a crash): the decision given and the
operator's result; one escalation per (run, tool_use, kind), since a gated call approved and then cut
off gets a second one. ToolCall status outcome_unknown."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runs', '0003_default_model'),
        ('tenants', '0002_webhookdelivery'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='escalation',
            name='one_escalation_per_tool_use',
        ),
        migrations.AddField(
            model_name='escalation',
            name='decision',
            field=models.CharField(blank=True, db_default='', max_length=20),
        ),
        migrations.AddField(
            model_name='escalation',
            name='resolution',
            field=models.TextField(blank=True, db_default='', max_length=16000),
        ),
        migrations.AlterField(
            model_name='escalation',
            name='kind',
            field=models.CharField(choices=[('tool_call', 'Gated tool call'), ('handoff', 'Agent hand-off'), ('outcome_unknown', 'Tool call with unknown outcome')], max_length=20),
        ),
        migrations.AlterField(
            model_name='toolcall',
            name='status',
            field=models.CharField(choices=[('started', 'Started'), ('succeeded', 'Succeeded'), ('error', 'Error'), ('refused', 'Refused'), ('gated', 'Gated'), ('rejected', 'Rejected'), ('outcome_unknown', 'Outcome Unknown')], default='started', max_length=20),
        ),
        migrations.AddConstraint(
            model_name='escalation',
            constraint=models.UniqueConstraint(fields=('run', 'tool_use_id', 'kind'), name='one_escalation_per_tool_use_kind'),
        ),
    ]
