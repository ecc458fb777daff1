"""Static files in development: under ``DEBUG``, the wrapped application serves them as
``runserver`` does.

``runserver`` (Django's, and daphne's) answers ``STATIC_URL`` from the apps' ``static/``
folders while ``DEBUG`` is on; an ASGI server such as uvicorn does not, so a project served
by ``uvicorn --reload`` in development would get 404 for ``{% pgsse_script %}`` (and for
the admin's styles). :func:`pgsse.asgi.wrap` therefore puts Django's own
``ASGIStaticFilesHandler`` in front of the application when, and only when, ``DEBUG`` is
on and ``django.contrib.staticfiles`` is installed: files are found by the staticfiles
finders (no ``collectstatic``), every other request passes through untouched. With
``DEBUG = False`` nothing is served this way: serve static files with servestatic,
WhiteNoise or the proxy (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings

from pgsse.takeover import ASGIApp

__all__ = ["in_development"]


def in_development(application: ASGIApp) -> ASGIApp:
    """``application``, serving ``STATIC_URL`` as ``runserver`` does while ``DEBUG`` is on."""
    static_url = getattr(settings, "STATIC_URL", None) or ""
    if not settings.DEBUG or not static_url or not apps.is_installed("django.contrib.staticfiles"):
        return application
    if urlsplit(static_url).netloc:
        return application  # files on another host (a CDN): not ours to answer
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    # Any ASGI application will do, whatever the stubs say (they name Django's handler).
    return cast(ASGIApp, ASGIStaticFilesHandler(cast(Any, application)))
