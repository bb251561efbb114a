"""The operations console's routes, mounted at /ops/ (namespace `ops`)."""

from django.urls import path

from loyalty.web import ops

app_name = "ops"
urlpatterns = [
    path("", ops.tiers, name="tiers"),
    path("retention/", ops.retention, name="retention"),
    path("revenue/", ops.revenue, name="revenue"),
    path("benefits/", ops.benefits, name="benefits"),
    path("abuse/", ops.abuse, name="abuse"),
    path("health/", ops.health, name="health"),
]
