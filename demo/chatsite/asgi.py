"""ASGI entry point: ``uvicorn chatsite.asgi:application``.

Wrapped by pgsse so that the hub starts with the worker and ends its streams cleanly
when the worker stops.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import pgsse.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

application = pgsse.asgi.wrap(get_asgi_application())
