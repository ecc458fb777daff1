"""Settings of the django-eventstream peer: the library's documented set-up, nothing more."""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_eventstream",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "bench.eventstream_site.urls"
ASGI_APPLICATION = "bench.eventstream_site.asgi.application"

# The bench database; CONN_MAX_AGE = 0 as Django recommends under ASGI.
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Events are stored (and replayed on Last-Event-ID), as the README advises for reliability.
EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.DjangoModelStorage"
