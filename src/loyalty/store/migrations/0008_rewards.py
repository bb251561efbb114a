"""The reward catalogue, and redemptions of rewards (quantity, lots drawn, state, reversal).

Redeeming points moved from the `members:write` scope to its own `points:write`: every key
that held `members:write` when this runs is given `points:write` too, so no platform loses a
call it could make (reversed, the scope is taken away again)."""

import django.db.models.deletion
from django.db import migrations, models


def grant_points_write(apps, schema_editor):
    ApiKey = apps.get_model("loyalty", "ApiKey")
    for key in ApiKey.objects.all():
        if "members:write" in key.scopes and "points:write" not in key.scopes:
            key.scopes = sorted([*key.scopes, "points:write"])
            key.save(update_fields=["scopes"])


def take_points_write(apps, schema_editor):
    ApiKey = apps.get_model("loyalty", "ApiKey")
    for key in ApiKey.objects.all():
        if "points:write" in key.scopes:
            key.scopes = [scope for scope in key.scopes if scope != "points:write"]
            key.save(update_fields=["scopes"])


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0007_order_quote'),
    ]

    operations = [
        migrations.CreateModel(
            name='Reward',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.SlugField(help_text='What the API names it, e.g. mug-2027.', max_length=64,
                                          unique=True)),
                ('name', models.CharField(max_length=100)),
                ('kind', models.CharField(choices=[('goods', 'goods'), ('coupon', 'coupon')], default='goods',
                                          max_length=8)),
                ('points_cost', models.BigIntegerField(help_text='Points per unit; more than zero.')),
                ('value_fen', models.BigIntegerField(default=0,
                                                     help_text="Coupon rewards: the coupon's face value, in fen.")),
                ('min_spend_fen', models.BigIntegerField(default=0,
                                                         help_text='Coupon rewards: the spend it needs, in fen.')),
                ('valid_days', models.IntegerField(blank=True, help_text='Coupon rewards: days valid from issue.',
                                                   null=True)),
                ('stock', models.BigIntegerField(blank=True, help_text='Units left; empty means unlimited.',
                                                 null=True)),
                ('per_member_limit', models.IntegerField(
                    blank=True, help_text='Units one member may hold (reversed ones not counted).', null=True)),
                ('active', models.BooleanField(default=True)),
                ('available_from', models.DateTimeField(blank=True, null=True)),
                ('available_until', models.DateTimeField(blank=True, help_text='Exclusive.', null=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'rewards',
                'constraints': [
                    models.CheckConstraint(condition=models.Q(('points_cost__gt', 0)), name='rewards_cost_positive'),
                    models.CheckConstraint(condition=models.Q(('stock__isnull', True), ('stock__gte', 0),
                                                              _connector='OR'),
                                           name='rewards_stock_not_negative'),
                ],
            },
        ),
        migrations.AddField(
            model_name='redemption',
            name='reward',
            field=models.ForeignKey(blank=True, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.PROTECT, to='loyalty.reward'),
        ),
        migrations.AddField(
            model_name='redemption',
            name='quantity',
            field=models.IntegerField(default=1),
        ),
        migrations.AddField(
            model_name='redemption',
            name='state',
            field=models.CharField(choices=[('completed', 'completed'), ('reversed', 'reversed')],
                                   default='completed', max_length=10),
        ),
        migrations.AddField(
            model_name='redemption',
            name='lots',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='redemption',
            name='balance_after',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='ruleset_version',
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='reversed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='redemption',
            name='reversed_by',
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddIndex(
            model_name='redemption',
            index=models.Index(fields=['member', 'reward', 'state'], name='redemptions_member_reward'),
        ),
        migrations.RunPython(grant_points_write, take_points_write),
    ]
