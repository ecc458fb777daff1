"""The test settings with daphne first in INSTALLED_APPS: ``manage.py runserver`` is then
daphne's ASGI development server (what people who use daphne run in development)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

INSTALLED_APPS = ["daphne", *INSTALLED_APPS]  # noqa: F405
