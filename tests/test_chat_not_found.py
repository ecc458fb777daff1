"""Pages that are not found show the chat's own page, under DEBUG (``make run``) too:
never Django's technical page, which lists every URL pattern of the site."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

#: What Django's technical 404 page shows, and what the chat's must never tell.
SITE_MAP = ("URLconf", "chatsite.urls", "api/rooms/", "tried")


def chat_page(response: httpx.Response, says: str) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>Not found · pgsse chat</title>" in response.text
    assert says in response.text
    assert 'href="/">Back to the rooms' in response.text
    for leak in SITE_MAP:
        assert leak not in response.text, leak


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
def test_stale_links_show_the_chats_own_page(
    server: LiveServer, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    alice = ChatAccount(server.url, "alice")
    # No URL matches.
    chat_page(alice.client.get("/no/such/page/"), "There is nothing here")
    # A view's own 404 keeps its message.
    chat_page(alice.client.get("/rooms/gone-room/"), "There is no room #gone-room")
    # Logged out too, with the top bar's links.
    with httpx.Client(base_url=server.url) as visitor:
        chat_page(visitor.get("/nothing/"), "There is nothing here")
    # The trailing-slash redirect still happens; JSON 404s stay JSON.
    redirect = alice.client.get("/rooms/lobby")
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "/rooms/lobby/"
    api = alice.client.get("/api/nothing/")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/json"
    alice.close()
