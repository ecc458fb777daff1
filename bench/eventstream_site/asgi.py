"""``uvicorn bench.eventstream_site.asgi:application``: Django's ASGI handler, as documented."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.eventstream_site.settings")

application = get_asgi_application()
