"""Schema set-up: migrations, and the SQLite file's folder when SQLite is the database."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management import call_command


def migrate(*, verbose: bool = False) -> None:
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3") and database["NAME"] not in (":memory:", ""):
        Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=1 if verbose else 0, interactive=False)
