"""Django settings. `LOYALTY_DATABASE_URL` picks the database (default: SQLite under ./var/)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path.cwd()
DEFAULT_SQLITE = BASE_DIR / "var" / "loyalty.sqlite3"


# Each request thread keeps its connection this many seconds (checked before reuse): opening one
# per request cost a quarter of a member status read on SQLite, and a TLS handshake elsewhere.
LOYALTY_CONN_MAX_AGE = int(os.environ.get("LOYALTY_CONN_MAX_AGE", "60"))


def database_from_url(url: str) -> dict[str, Any]:
    parsed = dj_database_url.parse(url, conn_max_age=LOYALTY_CONN_MAX_AGE, conn_health_checks=True)
    config: dict[str, Any] = dict(parsed)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMPORTANT: IMMEDIATE transactions take the write lock at BEGIN, so two writers never
        # deadlock upgrading a read lock; WAL lets readers run beside the one writer.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            # A 64 MiB page cache keeps the ledger's indexes in memory while importing history.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;",
        }
        config["TEST"] = {"NAME": None}
    elif config["ENGINE"] == "django.db.backends.mysql":
        # READ COMMITTED: each statement sees what committed before it, as on PostgreSQL, and
        # InnoDB takes no gap locks on inserts, which would otherwise deadlock concurrent writers.
        config["OPTIONS"] = {"charset": "utf8mb4", "isolation_level": "read committed"}
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_bin"}
    return config


# Signs member tokens and sessions. `loyalty serve` refuses the development default unless
# --demo or LOYALTY_DEBUG=1; the other commands (migrate, import, ...) sign nothing that lasts.
INSECURE_SECRET_KEY = "insecure-development-key-change-me"
SECRET_KEY = os.environ.get("LOYALTY_SECRET_KEY") or INSECURE_SECRET_KEY
DEBUG = os.environ.get("LOYALTY_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("LOYALTY_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the API docs' own Swagger UI files, served locally (no CDN)
    "loyalty.store",
    "loyalty.web",  # the member center and the operations console (their static files)
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "loyalty.api.errors.UnknownRoutes",  # JSON 404 and 405 under /api/v1/
]
ROOT_URLCONF = "loyalty.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [Path(__file__).resolve().parent / "templates"],  # the admin's own pages (the backtest)
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {
    "default": database_from_url(os.environ.get("LOYALTY_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE}"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
USE_I18N = True
STATIC_URL = "static/"

# Rate-limit counters (and any other short-lived shared state): Redis when LOYALTY_REDIS_URL is
# set, so every worker process counts against one limit; process memory otherwise.
REDIS_URL = os.environ.get("LOYALTY_REDIS_URL", "")
CACHES = {"default": (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "loyalty"}
    if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "loyalty"}
)}
# A batch of 1,000 orders with items is about 300 KB; a body over 4 MB is refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

# Everything to stderr (gunicorn's workers inherit it): an unhandled exception (a 500) with its
# traceback from `django.request`, whose 4xx warnings (every client mistake) are left out, and
# the `loyalty` loggers at LOYALTY_LOG_LEVEL (default INFO). Django's default handlers (console
# only under DEBUG, mail to ADMINS) are replaced, so nothing is printed twice or mailed.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": [], "level": "WARNING"},
        "django.request": {"level": "ERROR"},
        "loyalty": {"level": os.environ.get("LOYALTY_LOG_LEVEL", "INFO").upper()},
    },
}
