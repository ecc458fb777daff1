"""``{% pgsse_script %}``: the script tag of pgsse.js, its CSP nonce, and the file it names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.http import HttpResponse
from django.template import Context, RequestContext, Template
from django.test import RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject, empty

import pgsse
from tests.servers import LiveServer

TAG = Template("{% load pgsse %}{% pgsse_script %}")
SCRIPT = Path(pgsse.__file__).parent / "static" / "pgsse" / "pgsse.js"


# The ignores cover both rows of the matrix: django-stubs 6 makes SimpleLazyObject generic.
class LazyNonce(SimpleLazyObject):  # type: ignore[type-arg, unused-ignore]
    """Like Django 6's nonce: generated when first rendered, and false until then."""

    def __init__(self) -> None:
        super().__init__(lambda: "generated-on-render")

    def __bool__(self) -> bool:
        return self._wrapped is not empty  # type: ignore[attr-defined, unused-ignore]


def test_without_a_nonce_the_tag_is_a_plain_script_tag() -> None:
    assert TAG.render(Context()) == '<script src="/static/pgsse/pgsse.js"></script>'
    request = RequestFactory().get("/")
    assert TAG.render(RequestContext(request)) == '<script src="/static/pgsse/pgsse.js"></script>'
    # A context processor that gives an empty nonce when the page has none.
    assert "nonce" not in TAG.render(Context({"csp_nonce": ""}))


def test_the_nonce_of_djangos_context_processor_is_rendered_even_before_it_is_generated() -> None:
    nonce = LazyNonce()
    assert not nonce  # Django's middleware leaves an unrendered nonce out of its header
    rendered = TAG.render(Context({"csp_nonce": nonce}))
    assert rendered == '<script src="/static/pgsse/pgsse.js" nonce="generated-on-render"></script>'
    assert nonce  # rendering it generated it: the header will carry it


def test_the_nonce_on_the_request_is_rendered_as_django_csp_gives_it() -> None:
    request = RequestFactory().get("/")
    request.csp_nonce = 'a"b<c>'  # type: ignore[attr-defined]
    assert TAG.render(RequestContext(request)) == (
        '<script src="/static/pgsse/pgsse.js" nonce="a&quot;b&lt;c&gt;"></script>'
    )


def test_with_djangos_own_csp_middleware_the_header_allows_the_tag() -> None:
    csp = pytest.importorskip("django.middleware.csp", reason="Django 6 brings CSP support")
    policy = {"script-src": ["'self'", pytest.importorskip("django.utils.csp").CSP.NONCE]}

    middleware = csp.ContentSecurityPolicyMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")
    middleware.process_request(request)
    # Without the csp() context processor: the tag finds the nonce on the request.
    rendered = TAG.render(RequestContext(request))
    with override_settings(SECURE_CSP=policy):
        response = middleware.process_response(request, HttpResponse())
    nonce = re.fullmatch(r'<script src="[^"]+/pgsse.js" nonce="([^"]+)"></script>', rendered)
    assert nonce is not None
    assert f"'nonce-{nonce[1]}'" in response["Content-Security-Policy"]


@pytest.mark.django_db(transaction=True)
def test_the_tag_names_a_path_the_static_files_serve(stream_app: Callable[[], Any]) -> None:
    # Static files are served in front of the application, as the chat does.
    from chatsite.static_files import with_static_files

    src = re.search(r'src="([^"]+)"', TAG.render(Context()))
    assert src is not None
    with override_settings(ROOT_URLCONF="tests.urls"):
        server = LiveServer(with_static_files(stream_app())).start()
        try:
            response = httpx.get(server.url + src[1])
        finally:
            server.stop()
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.content == SCRIPT.read_bytes()
