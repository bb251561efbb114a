from django.db import migrations


class Migration(migrations.Migration):
    """What a member has seen of their page (filled in with the member center)."""

    dependencies = [("loyalty", "0013_holds")]

    operations: list[migrations.operations.base.Operation] = []
