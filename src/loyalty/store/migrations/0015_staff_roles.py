"""The staff roles as Django groups: viewer, operator, admin (docs/web.md, The operations console).

- viewer: `view_*` on every model of the app; that is also what opens the /ops/ dashboards.
- operator: viewer, plus exactly what the admin's operator actions check (`has_*_permission` in
  loyalty/admin/): invite members, revoke coupons, reverse redemptions, replay webhook
  deliveries, release deferred grants, acknowledge alerts, decide review cases; and
  `add_adjustment` (adjust a member with a reason).
- admin: every permission of the app (rulesets, rewards, API keys, webhook endpoints, ...).

The matrix is frozen here, as a migration must be. A model added by a later migration gets its
permissions into these groups in that migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APP = "loyalty"
ROLES = ("viewer", "operator", "admin")
OPERATOR_EXTRA = ("add_invitation", "change_coupon", "change_redemption", "change_webhookdelivery",
                  "change_deferredgrant", "change_opsalert", "change_reviewcase", "add_adjustment")


def create_roles(apps, schema_editor):
    # IMPORTANT: permissions are otherwise created by a post_migrate signal, after every migration:
    # on a fresh database they do not exist yet when this runs.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    mine = Permission.objects.filter(content_type__app_label=APP)
    viewer = list(mine.filter(codename__startswith="view_"))
    operator = viewer + list(mine.filter(codename__in=OPERATOR_EXTRA))
    for name, permissions in (("viewer", viewer), ("operator", operator), ("admin", list(mine))):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    """The staff roles: viewer, operator, admin (groups with their permissions)."""

    dependencies = [
        ("loyalty", "0014_member_center"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
