"""Settings of the chat application. Secrets, DEBUG and the database come from the environment.

- ``DATABASE_URL``: the PostgreSQL to use; when unset, an embedded PostgreSQL under the
  repository's ``.pgdata/dev`` is started (or reused).
- ``DJANGO_SECRET_KEY``: required unless the database is the embedded development one (or
  ``DJANGO_DEBUG`` is on); those use a random key kept in ``.pgdata/secret_key``.
- ``DJANGO_DEBUG``: ``1`` for development (``make run`` sets it).
- ``DJANGO_ALLOWED_HOSTS``: comma-separated; defaults to localhost names.
- ``CHAT_ANONYMOUS_READ``: ``1`` lets visitors who are not logged in read public rooms.
- ``CHAT_HTMX_RECIPE``: ``1`` serves the htmx recipe's notice board under ``/htmx/``.
- E-mail (password resets): under ``DJANGO_DEBUG`` (``make run``) e-mails are printed in the
  server's terminal; otherwise they are sent by SMTP through ``EMAIL_HOST`` (default
  ``localhost``), ``EMAIL_PORT`` (25), ``EMAIL_HOST_USER``, ``EMAIL_HOST_PASSWORD`` and
  ``EMAIL_USE_TLS`` (``1``), from ``DEFAULT_FROM_EMAIL``. ``DJANGO_EMAIL_BACKEND`` names
  another backend.
- ``DJANGO_MEDIA_ROOT``: the folder of attachments (default storage); defaults to the
  repository's ``.pgdata/media``, beside the development database.
- ``DJANGO_DB_POOL_SIZE``: the most PostgreSQL connections Django's pool keeps per
  process (default 8; see ``DATABASES`` below); 0: no pool, a connection per request.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from chatsite.embedded_db import database_url

    return database_url("dev")


DATABASE_URL = _database_url()
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    from chatsite.embedded_db import development_secret_key, is_embedded

    # The embedded database lives in this checkout: that is development, where the
    # documented `manage.py` commands must work with nothing set.
    if DEBUG or is_embedded(DATABASE_URL):
        return development_secret_key()
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for development): "
        "DATABASE_URL names a database outside this checkout's .pgdata/."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # ArrayField (a message's mentions); Django 6.1's checks require the app.
    "django.contrib.postgres",
    "servestatic",
    "axes",
    "pgsse",
    "chat",
    "htmx_recipe",
]

MIDDLEWARE = [
    # First: a client address that is not one (a proxy's bad X-Forwarded-For) is refused.
    "chat.client_address.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After the session's user: a bearer token's user replaces it (API, presence, streams).
    "chat.auth.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Every HTML 404 is the chat's page, under DEBUG too (Django's lists the URLconf).
    "chat.not_found.NotFoundPageMiddleware",
    # A page whose view cannot reach the database: a 503 page that says so.
    "chat.unreachable.DatabaseUnreachablePageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns the log-in form's lockout into the chat's 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chat.context_processors.account_links",
            ],
        },
    },
]

# CONN_MAX_AGE = 0: under ASGI every request runs in its own thread, and persistent
# connections would pile up; pgsse's streams hold no Django connection at all.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
# Django's connection pool (psycopg_pool): a request (a page, an API call, a stream's
# open) takes a connection when it first queries and gives it back when it ends, instead
# of starting a PostgreSQL backend (a process) of its own and ending it.
# - min_size 0, max_idle 2 s: an idle process goes back to holding no connection, as
#   without the pool. psycopg_pool closes one connection left unused for a whole
#   max_idle, so an idle worker is back to none within max_size x max_idle (16 s).
# - max_size 8: at most that many connections per process, shared by every request and
#   by pgsse's stream setup (SETUP_CONCURRENCY, 4); a request finding none free waits
#   up to timeout (10 s), then fails as if the database were unreachable (the API and
#   streams answer 503). Budget max_connections per process as this plus pgsse's own
#   (listener, readers, notifier: docs/deployment.md).
# - CONN_HEALTH_CHECKS: a pooled connection is checked (an empty query) before each
#   request gets it, so that one broken while idle (PostgreSQL restarted) is replaced
#   rather than failing that request.
# A PgBouncer in transaction mode may sit behind it (the pool then holds client
# connections to PgBouncer); pgsse's LISTEN connection may not (docs/deployment.md).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
_pool_size = int(os.environ.get("DJANGO_DB_POOL_SIZE", "8"))
if _pool_size:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 0,
        "max_size": _pool_size,
        "max_idle": 2.0,
        "timeout": 10.0,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Attachments, through Django's storage API (chat/attachments.py): a folder here; a
# deployment may set STORAGES["default"] to an object store instead. Never served from
# MEDIA_URL: only chat/downloads.py serves them, to those who may read their room.
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT") or BASE_DIR.parent / ".pgdata" / "media")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out log-in before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading the user of each request with one plain statement.
    "chat.backends.AccountBackend",
]
LOGIN_URL = "chat:login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "chat:login"

# Log-in throttling (django-axes, attempts stored in PostgreSQL: shared by every process).
# Five failures lock that username *from that client address* for five minutes: one
# address's typos (or guesses at made-up names) lock nobody else out, and nobody can lock
# an account out for its owner from elsewhere. Guessing one password from many addresses
# is what the password validators are for.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "chat.auth.lockout_response"
# A username longer than any account's is counted cut to that length, not refused by
# the database (axes keeps 255 characters).
AXES_USERNAME_CALLABLE = "chat.auth.attempted_username"
AXES_VERBOSE = False

# E-mail: password resets. Printed in the terminal under DEBUG (make run), sent by SMTP
# otherwise (see the docstring).
_SMTP = "django.core.mail.backends.smtp.EmailBackend"
_mail_backend = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    "chat.console_mail.EmailBackend" if DEBUG else _SMTP
)
_smtp_options = {
    "host": os.environ.get("EMAIL_HOST", "localhost"),
    "port": int(os.environ.get("EMAIL_PORT", "25")),
    "username": os.environ.get("EMAIL_HOST_USER", ""),
    "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
    "use_tls": os.environ.get("EMAIL_USE_TLS", "") == "1",
}
if django.VERSION >= (6, 1):
    # Django 6.1 configures mail with MAILERS (its EMAIL_* settings are deprecated).
    MAILERS = {
        "default": {
            "BACKEND": _mail_backend,
            "OPTIONS": _smtp_options if _mail_backend == _SMTP else {},
        }
    }
else:
    EMAIL_BACKEND = _mail_backend
    EMAIL_HOST = _smtp_options["host"]
    EMAIL_PORT = _smtp_options["port"]
    EMAIL_HOST_USER = _smtp_options["username"]
    EMAIL_HOST_PASSWORD = _smtp_options["password"]
    EMAIL_USE_TLS = _smtp_options["use_tls"]
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "pgsse chat <chat@localhost>")

# The chat's own settings (defaults and meaning in chat/conf.py and docs/chat.md).
CHAT_ANONYMOUS_READ = os.environ.get("CHAT_ANONYMOUS_READ", "") == "1"
CHAT_HTMX_RECIPE = os.environ.get("CHAT_HTMX_RECIPE", "") == "1"

# Django's database sessions, read with one plain statement (chat/sessions.py).
SESSION_ENGINE = "chat.sessions"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the chat's script reads it to post with fetch()
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

PGSSE: dict[str, object] = {
    # /metrics for whoever runs the chat on this machine (chatsite/urls.py routes it).
    "METRICS_ALLOW_FROM": ["127.0.0.1", "::1"],
    "RETENTION": {
        "": {"max_age": 7 * 24 * 3600, "max_events": 10_000},
        # Typing notices matter for seconds: never kept in the log for long, and a page
        # away for longer skips them instead of reloading.
        "typing:": {"max_age": 60, "max_events": 100, "lossy": True},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"pgsse": {"handlers": ["console"], "level": "INFO"}},
}
