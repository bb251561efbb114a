"""Coupon templates: each coupon records its template, stacking group and usage at issue, and who
revoked it. Coupons issued before get the groups the grants now give: `delivery` for free
deliveries, none ("") for birthday packs, `cash` for the rest; all are `single` use."""

from typing import Any

from django.db import migrations, models


def group_existing_coupons(apps: Any, schema_editor: Any) -> None:
    Coupon = apps.get_model("loyalty", "Coupon")
    Coupon.objects.filter(kind="free_delivery").update(stacking_group="delivery")
    Coupon.objects.filter(kind="birthday_pack").update(stacking_group="")


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0008_rewards'),
    ]

    operations = [
        migrations.AddField(
            model_name='coupon',
            name='template',
            field=models.CharField(blank=True, db_default='', default='', max_length=64),
        ),
        migrations.AddField(
            model_name='coupon',
            name='stacking_group',
            field=models.CharField(blank=True, db_default='cash', default='cash', max_length=32),
        ),
        migrations.AddField(
            model_name='coupon',
            name='usage',
            field=models.CharField(db_default='single', default='single', max_length=16),
        ),
        migrations.AddField(
            model_name='coupon',
            name='revoked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='coupon',
            name='revoked_by',
            field=models.CharField(blank=True, db_default='', default='', max_length=100),
        ),
        migrations.AddField(
            model_name='coupon',
            name='revoke_reason',
            field=models.CharField(blank=True, db_default='', default='', max_length=200),
        ),
        migrations.RunPython(group_existing_coupons, migrations.RunPython.noop),
    ]
