from django.apps import AppConfig


class StoreConfig(AppConfig):
    name = "loyalty.store"
    label = "loyalty"
    verbose_name = "Loyalty"
    default_auto_field = "django.db.models.BigAutoField"
