"""The test project's ASGI application, with pgsse's lifespan wrapper as users deploy it."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import pgsse.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = pgsse.asgi.wrap(get_asgi_application())

# What a project serving static files under uvicorn in development may write: Django's
# static files handler around the wrapped application (pgsse.W006 must see through it).
from typing import Any, cast  # noqa: E402

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

with_static_files = ASGIStaticFilesHandler(cast(Any, application))
