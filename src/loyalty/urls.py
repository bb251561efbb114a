"""URL routes: the operators' console for now; the API and web pages mount here too."""

import re

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.http import HttpRequest, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.http import require_safe

import loyalty.admin  # noqa: F401  (registers the operators' console)
from loyalty.api import api, hot
from loyalty.api.errors import API_PREFIX


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The load balancer's health check: the process answers. Touches no database on purpose, so
    a slow database does not take every worker out of rotation (and it is the API benchmark's baseline)."""
    return JsonResponse({"status": "ok"})


# The admin's CSS and JS, served by the app itself whether DEBUG or not (gunicorn serves no
# static files, and runserver, which did, is gone). `insecure=True` only lifts the DEBUG-only
# guard: the staticfiles finders resolve paths inside the apps' static folders (a `..` is
# refused), and the files come straight from the installed packages, so there is no
# `collectstatic` step to forget and nothing to go stale. Fine for an operators' console; put a
# CDN or reverse proxy in front (or add whitenoise) once pages for members arrive.
STATIC_ROUTE = rf"^{re.escape(settings.STATIC_URL.lstrip('/'))}(?P<path>.+)$"

urlpatterns = [
    path("healthz", healthz),
    # The member center's status read, before Ninja's routes: see loyalty.api.hot.
    path(f"{API_PREFIX.lstrip('/')}members/<str:external_id>", hot.member_status),
    path(API_PREFIX.lstrip("/"), api.urls),
    path("admin/", admin.site.urls),
    path("ops/", include("loyalty.web.ops_urls")),
    path("m/", include("loyalty.web.member_urls")),  # the member center (a member token opens it)
    re_path(STATIC_ROUTE, serve_static, {"insecure": True}),
]
