"""URL routes: the operators' console for now; the API and web pages mount here too."""

from django.contrib import admin
from django.urls import path

import loyalty.admin  # noqa: F401  (registers the operators' console)

urlpatterns = [path("admin/", admin.site.urls)]
