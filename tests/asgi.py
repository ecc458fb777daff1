"""The test project's ASGI application, with pgsse's lifespan wrapper as users deploy it."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import pgsse.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = pgsse.asgi.wrap(get_asgi_application())
