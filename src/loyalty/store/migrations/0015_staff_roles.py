from django.db import migrations


class Migration(migrations.Migration):
    """The staff roles: viewer, operator, admin (filled in with the operations console)."""

    dependencies = [("loyalty", "0014_member_center")]

    operations: list[migrations.operations.base.Operation] = []
