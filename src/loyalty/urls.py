"""URL routes: the operators' console for now; the API and web pages mount here too."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
