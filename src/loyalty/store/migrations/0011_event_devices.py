import django.db.models.deletion
from django.db import migrations, models

KINDS = [('device', 'device'), ('address', 'address'), ('ip', 'ip')]


def origin_fields(model_name):
    return [
        migrations.AddField(model_name=model_name, name='device_id',
                            field=models.CharField(blank=True, db_default='', default='', max_length=128)),
        migrations.AddField(model_name=model_name, name='ip',
                            field=models.CharField(blank=True, db_default='', default='', max_length=45)),
        migrations.AddField(model_name=model_name, name='address_hash',
                            field=models.CharField(blank=True, db_default='', default='', max_length=128)),
    ]


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0010_budgets'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='capped_reason',
            field=models.CharField(blank=True, db_default='', default='', max_length=32),
        ),
        *origin_fields('order'),
        *origin_fields('action'),
        migrations.CreateModel(
            name='LinkedValue',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=KINDS, max_length=8)),
                ('value', models.CharField(max_length=128)),
                ('members', models.IntegerField(default=0)),
            ],
            options={
                'db_table': 'linked_values',
                'constraints': [models.UniqueConstraint(fields=('kind', 'value'), name='linked_values_unique')],
            },
        ),
        migrations.CreateModel(
            name='MemberLink',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=KINDS, max_length=8)),
                ('value', models.CharField(max_length=128)),
                ('seat', models.IntegerField()),
                ('first_seen_at', models.DateTimeField()),
                ('member', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                             to='loyalty.member')),
            ],
            options={
                'db_table': 'member_links',
                'indexes': [models.Index(fields=['member', 'kind'], name='member_links_member')],
                'constraints': [models.UniqueConstraint(fields=('kind', 'value', 'member'),
                                                        name='member_links_unique')],
            },
        ),
    ]
