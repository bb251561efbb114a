"""Staff accounts for the admin and the operations console, each with one role.

A role is a Django group created by migration 0015 (viewer, operator, admin; the matrix is in
docs/web.md). Staff are Django users with `is_staff` (so the admin lets them in) and no
superuser flag: what they may do is exactly what their group's permissions say.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, Group, User
from django.db import transaction

from loyalty.domain.errors import Conflict, InvalidInput, NotFound

ROLES = ("viewer", "operator", "admin")
# What opens the /ops/ dashboards: the viewer role has it, and so has every role above it.
OPS_PERMISSION = "loyalty.view_member"


def create_staff(username: str, password: str, role: str) -> User:
    """A new staff user in the role's group. The password is stored hashed, never shown again."""
    username = username.strip()
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}; got {role!r}", field="role")
    if not username or len(username) > 150:
        raise InvalidInput("username must be 1–150 characters", field="username")
    if not password:
        raise InvalidInput("password must not be empty", field="password")
    group = Group.objects.filter(name=role).first()
    if group is None:
        raise NotFound(f"there is no {role} group: run `loyalty migrate` first", field="role", code="unknown_role")
    with transaction.atomic():
        if User.objects.filter(username=username).exists():
            raise Conflict(f"a user named {username!r} exists already", field="username", code="username_taken")
        user = User.objects.create_user(username, password=password, is_staff=True)
        user.groups.add(group)
    return user


def can_open_ops(user: User | AnonymousUser) -> bool:
    """Staff with at least the viewer role (superusers have every permission)."""
    return bool(user.is_active and user.is_staff and user.has_perm(OPS_PERMISSION))
