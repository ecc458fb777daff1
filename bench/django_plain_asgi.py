"""pgsse through Django's ASGI handler without ``pgsse.asgi.wrap()``.

``uvicorn bench.django_plain_asgi:application`` (lifespan off: Django refuses it): the
test project of tests/urls.py exactly as tests/asgi.py serves it, minus the wrapper. This
is the path of a project that routes ``StreamView`` but never wraps its application; the
hub then starts on the first stream.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = get_asgi_application()
