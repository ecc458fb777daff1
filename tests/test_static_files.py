"""pgsse.static_files: static files served by the wrapped application in development only
(served end to end by tests/test_quickstart.py, whose fresh project has DEBUG on)."""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

import pgsse.asgi
from pgsse.asgi import is_wrapped


def test_with_debug_the_wrapped_application_serves_static_files(settings: Any) -> None:
    settings.DEBUG = True
    application = pgsse.asgi.wrap(get_asgi_application())
    assert isinstance(application, ASGIStaticFilesHandler)
    assert is_wrapped(application)


def test_without_debug_nothing_is_served_for_it(settings: Any) -> None:
    settings.DEBUG = False
    application = pgsse.asgi.wrap(get_asgi_application())
    assert not isinstance(application, ASGIStaticFilesHandler)
    assert is_wrapped(application)


def test_static_files_on_another_host_are_not_answered(settings: Any) -> None:
    settings.DEBUG = True
    settings.STATIC_URL = "https://cdn.example.com/static/"
    application = pgsse.asgi.wrap(get_asgi_application())
    assert not isinstance(application, ASGIStaticFilesHandler)


def test_is_wrapped_follows_asgi_middleware_of_every_usual_shape() -> None:
    inner = pgsse.asgi.wrap(get_asgi_application())

    class Starlette:  # Starlette's and Sentry's middleware keep `app`
        def __init__(self, app: Any) -> None:
            self.app = app

    def with_wraps(app: Any) -> Any:
        async def outer(scope: Any, receive: Any, send: Any) -> None:
            await app(scope, receive, send)

        outer.__wrapped__ = app  # type: ignore[attr-defined]
        return outer

    around_wrapped: Any = Starlette(with_wraps(inner))
    around_django: Any = Starlette(get_asgi_application())
    assert is_wrapped(ASGIStaticFilesHandler(around_wrapped))
    assert not is_wrapped(ASGIStaticFilesHandler(around_django))
