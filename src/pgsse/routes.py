"""Which request paths lead to a ``StreamView``: the wrapper asks before Django's handler.

Paths are resolved with the project's ``ROOT_URLCONF`` (Django's resolver, cached by path).
A ``StreamView`` route wrapped in decorators is still recognised (``functools.wraps`` keeps
``view_class``), and its decorators run, since the view is called as usual. A middleware
that switches ``request.urlconf`` per request is not foreseen here: such a stream is taken
over later, when Django's handler answers (see :mod:`pgsse.asgi`).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import Resolver404, get_resolver

__all__ = ["StreamRoutes"]

#: Paths remembered; the cache starts over beyond this (most paths repeat: a few routes).
_REMEMBERED = 4096


class StreamRoutes:
    """Answers whether a request's path resolves to a ``StreamView``."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], bool] = {}

    def is_stream(self, scope: Any) -> bool:
        root = scope.get("root_path", "")
        path = scope["path"]
        path_info = path[len(root) :] if root and path.startswith(root) else path
        key = (settings.ROOT_URLCONF, path_info)
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= _REMEMBERED:
                self._known.clear()
            known = self._known[key] = _resolves_to_stream(path_info)
        return known


def _resolves_to_stream(path_info: str) -> bool:
    from pgsse.views import StreamView

    try:
        match = get_resolver().resolve(path_info or "/")
    except Resolver404:
        return False
    view_class = getattr(match.func, "view_class", None)
    return isinstance(view_class, type) and issubclass(view_class, StreamView)
