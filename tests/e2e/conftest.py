"""What the admin's tests share: a logged-in superuser (roles are tested in test_admin_roles.py)."""

import pytest
from django.contrib.auth.models import User


@pytest.fixture
def operator(client, db):
    """The test client, logged in as a superuser."""
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "secret"))
    return client
