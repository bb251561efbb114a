from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0006_coupons_member_order'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='quote_id',
            field=models.CharField(blank=True, default='', max_length=64),
        ),
    ]
