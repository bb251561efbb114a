"""The member center's routes, mounted at /m/ (no route names a member: see loyalty.web.member)."""

from django.urls import path

from loyalty.web import member

app_name = "member"
urlpatterns = [path("", member.center, name="center")]
