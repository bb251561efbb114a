import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0011_event_devices'),
    ]

    operations = [
        migrations.CreateModel(
            name='RiskScore',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('as_of', models.DateTimeField()),
                ('score_milli', models.BigIntegerField(help_text="The detector's score × 1000, rounded half up.")),
                ('flagged', models.BooleanField(default=False)),
                ('features', models.JSONField(default=dict)),
                ('reasons', models.JSONField(blank=True, default=list)),
                ('computed_at', models.DateTimeField()),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                             to='loyalty.member')),
            ],
            options={
                'db_table': 'risk_scores',
                'indexes': [models.Index(fields=['as_of', 'flagged'], name='risk_scores_night')],
                'constraints': [models.UniqueConstraint(fields=('member', 'as_of'), name='risk_scores_once')],
            },
        ),
    ]
