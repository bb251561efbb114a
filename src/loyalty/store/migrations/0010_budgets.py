import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0009_coupon_templates'),
    ]

    operations = [
        migrations.CreateModel(
            name='BudgetSpend',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tier', models.CharField(max_length=32)),
                ('month', models.CharField(max_length=7)),
                ('spent_fen', models.BigIntegerField(default=0)),
                ('alerted_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'verbose_name': 'budget spend',
                'db_table': 'budget_spends',
                'constraints': [models.UniqueConstraint(fields=('tier', 'month'), name='budget_spends_once')],
            },
        ),
        migrations.CreateModel(
            name='OpsAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=160)),
                ('kind', models.CharField(max_length=32)),
                ('subject', models.CharField(max_length=200)),
                ('message', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.CharField(blank=True, max_length=100)),
            ],
            options={
                'verbose_name': 'operator alert',
                'db_table': 'ops_alerts',
                'constraints': [models.UniqueConstraint(fields=('key',), name='ops_alerts_key_unique')],
            },
        ),
        migrations.CreateModel(
            name='DeferredGrant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=160)),
                ('tier', models.CharField(max_length=32)),
                ('month', models.CharField(max_length=7)),
                ('reason', models.CharField(max_length=16)),
                ('drafts', models.JSONField()),
                ('cost_fen', models.BigIntegerField()),
                ('valid_until', models.DateTimeField()),
                ('ruleset_version', models.IntegerField()),
                ('state', models.CharField(choices=[('deferred', 'deferred'), ('released', 'released'), ('lapsed', 'lapsed')], default='deferred', max_length=10)),
                ('created_at', models.DateTimeField()),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to='loyalty.member')),
            ],
            options={
                'db_table': 'deferred_grants',
                'indexes': [models.Index(fields=['member', 'created_at'], name='deferred_grants_member'), models.Index(fields=['state', 'id'], name='deferred_grants_state')],
                'constraints': [models.UniqueConstraint(fields=('key',), name='deferred_grants_key_unique')],
            },
        ),
    ]
