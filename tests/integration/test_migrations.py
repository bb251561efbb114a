"""The schema from nothing: every migration applies cleanly from empty on the database under
test (SQLite, PostgreSQL or MariaDB: `make test` runs this file on each), and the models and
migrations agree."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from loyalty.settings import database_from_url
from loyalty.store.models import Member

TABLES = {"members", "orders", "order_items", "refunds", "actions", "ledger_entries", "points_lots",
          "points_debts", "tier_changes", "adjustments", "redemptions", "ruleset_versions"}


@pytest.mark.django_db(transaction=True)
def test_every_migration_applies_from_empty_and_the_schema_works():
    call_command("migrate", "loyalty", "zero", verbosity=0)
    assert not TABLES & set(connection.introspection.table_names())
    call_command("migrate", "loyalty", verbosity=0)
    assert set(connection.introspection.table_names()) >= TABLES
    Member.objects.create(external_id="after-migrate", tier="bronze", registered_at="2027-01-01T00:00:00Z",
                          payload_hash="x")
    assert Member.objects.get(external_id="after-migrate").growth_balance == 0


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_written():
    call_command("makemigrations", "loyalty", "--check", "--dry-run", verbosity=0)


@pytest.mark.parametrize(("url", "engine"), [
    ("sqlite:////tmp/x.sqlite3", "django.db.backends.sqlite3"),
    ("postgresql://postgres@127.0.0.1:5432/test", "django.db.backends.postgresql"),
    ("mysql://root@127.0.0.1:3306/test", "django.db.backends.mysql"),
])
def test_the_database_url_picks_the_backend(url, engine):
    config = database_from_url(url)
    assert config["ENGINE"] == engine
    if engine.endswith("mysql"):
        assert config["OPTIONS"]["isolation_level"] == "read committed"
    if engine.endswith("sqlite3"):
        assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
