import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """What a member has seen of their page (filled in with the member center)."""

    dependencies = [("loyalty", "0013_holds")]

    operations: list[migrations.operations.base.Operation] = [
        migrations.CreateModel(
            name="MemberCenterView",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("seen_growth", models.BigIntegerField(default=0)),
                ("seen_progress", models.IntegerField(default=0,
                                                      help_text="The progress bar as last shown, in permille.")),
                ("celebrated_rank", models.IntegerField(default=0)),
                ("seen_benefits", models.JSONField(blank=True, default=list)),
                ("seen_at", models.DateTimeField()),
                ("member", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT,
                                                related_name="center_view", to="loyalty.member")),
            ],
            options={"db_table": "member_center_views"},
        ),
    ]
