"""ASGI entry point: ``uvicorn chatsite.asgi:application``.

Wrapped by pgsse so that the hub starts with the worker and ends its streams cleanly
when the worker stops, by servestatic for the static files (chatsite/static_files.py),
and, next to Django, by a limit on request bodies (chatsite/body_limit.py).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

import pgsse.asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

django_application = get_asgi_application()

from chat.conf import max_request_bytes  # noqa: E402  (needs the settings)
from chatsite.body_limit import limit_body  # noqa: E402
from chatsite.static_files import with_static_files  # noqa: E402

application = with_static_files(pgsse.asgi.wrap(limit_body(django_application, max_request_bytes)))
