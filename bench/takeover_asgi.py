"""pgsse under ``wrap()`` with only its second way of serving a stream: design (b).

``wrap()`` serves a ``StreamView`` route by running its request phase in a small pool of
threads (design (a)). A ``StreamView`` reached through a path the wrapper did not foresee
goes through Django's ASGI handler instead, and its stream is taken over when the handler
sends the response (design (b)). This application turns the first way off, so that every
stream takes the second: the benchmark measures both designs side by side.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

import pgsse.asgi
from pgsse.routes import StreamRoutes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


class _NoRoutes(StreamRoutes):
    def is_stream(self, scope: Any) -> bool:
        return False


pgsse.asgi.StreamRoutes = _NoRoutes  # type: ignore[attr-defined]  # read when wrap() builds its state
application = pgsse.asgi.wrap(get_asgi_application())
