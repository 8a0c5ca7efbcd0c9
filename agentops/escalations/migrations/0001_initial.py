import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('runs', '0005_delete_escalation'),
        ('tenants', '0004_webhook_endpoints'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    # Takes over the model from runs (runs/0005) without touching the database: same table, same rows.
    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Escalation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('tool_call', 'Gated tool call'), ('handoff', 'Agent hand-off'), ('outcome_unknown', 'Tool call with unknown outcome')], max_length=20)),
                        ('tool_use_id', models.CharField(max_length=100)),
                        ('tool_name', models.CharField(max_length=200)),
                        ('arguments', models.JSONField(default=dict)),
                        ('arguments_sha256', models.CharField(max_length=64)),
                        ('gate_reason', models.CharField(max_length=300)),
                        ('reason', models.TextField(blank=True, help_text="The agent's own words, for a hand-off.")),
                        ('context_summary', models.TextField(blank=True)),
                        ('urgency', models.CharField(choices=[('low', 'low'), ('normal', 'normal'), ('high', 'high')], default='normal', max_length=10)),
                        ('requested_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('sla_due_at', models.DateTimeField()),
                        ('expires_at', models.DateTimeField()),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('expired', 'Expired'), ('cancelled', 'Cancelled')], db_index=True, default='pending', max_length=20)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('comment', models.TextField(blank=True, max_length=5000)),
                        ('decision', models.CharField(blank=True, db_default='', max_length=20)),
                        ('resolution', models.TextField(blank=True, db_default='', max_length=16000)),
                        ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('decided_by_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tenants.apikey')),
                        ('grant', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='escalations', to='runs.toolgrant')),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='escalations', to='runs.run')),
                        ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.tenant')),
                    ],
                    options={
                        'db_table': 'runs_escalation',
                        'ordering': ['-requested_at', '-id'],
                        'indexes': [models.Index(fields=['tenant', 'status', '-requested_at'], name='runs_escala_tenant__f1352f_idx')],
                        'constraints': [models.UniqueConstraint(fields=('run', 'tool_use_id', 'kind'), name='one_escalation_per_tool_use_kind')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
