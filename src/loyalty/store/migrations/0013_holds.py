import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0012_risk'),
    ]

    operations = [
        migrations.AddField(
            model_name='action',
            name='hold',
            field=models.CharField(blank=True, db_default='', default='', max_length=8),
        ),
        migrations.AddField(
            model_name='member',
            name='held_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='order',
            name='hold',
            field=models.CharField(blank=True, db_default='', default='', max_length=8),
        ),
        migrations.CreateModel(
            name='ReviewCase',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('state', models.CharField(choices=[('open', 'open'), ('approved', 'approved'), ('rejected', 'rejected')], default='open', max_length=10)),
                ('reasons', models.JSONField(blank=True, default=list)),
                ('details', models.JSONField(blank=True, default=dict)),
                ('opened_at', models.DateTimeField()),
                ('decided_at', models.DateTimeField(blank=True, null=True)),
                ('decided_by', models.CharField(blank=True, max_length=100)),
                ('note', models.TextField(blank=True)),
                ('growth', models.BigIntegerField(default=0)),
                ('points', models.BigIntegerField(default=0)),
                ('orders', models.IntegerField(default=0)),
                ('actions', models.IntegerField(default=0)),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to='loyalty.member')),
            ],
            options={
                'db_table': 'review_cases',
                'indexes': [models.Index(fields=['member', 'state'], name='review_cases_member'), models.Index(fields=['state', 'opened_at'], name='review_cases_queue')],
            },
        ),
    ]
