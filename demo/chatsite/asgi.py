"""ASGI entry point: ``uvicorn chatsite.asgi:application``.

Wrapped by pgsse so that the hub starts with the worker and ends its streams cleanly
when the worker stops, and by servestatic for the static files (chatsite/static_files.py).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import pgsse.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

django_application = get_asgi_application()

from chatsite.static_files import with_static_files  # noqa: E402  (needs the settings)

application = with_static_files(pgsse.asgi.wrap(django_application))
