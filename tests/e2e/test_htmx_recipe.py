"""The htmx recipe (docs/htmx.md) in Chromium: fragments rendered by Django, swapped by htmx."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.template.loader import render_to_string
from htmx_recipe.views import CHANNEL, NOTE_EVENT
from playwright.async_api import BrowserContext, Page, Route, expect

import pgsse
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture(autouse=True)
def recipe_served(settings: Any) -> None:
    """The board is served only when the setting turns it on (it is off by default)."""
    settings.CHAT_HTMX_RECIPE = True


def _publish_fragment(event_type: str, author: str, text: str) -> None:
    """Publish as a view would, then give the thread's connection back (the test DB is
    dropped at the end of the session, which an idle connection would prevent)."""
    try:
        fragment = render_to_string("htmx_recipe/note.html", {"author": author, "text": text})
        pgsse.publish(CHANNEL, event_type, fragment)
    finally:
        connections.close_all()


publish_fragment = sync_to_async(_publish_fragment)


async def open_board(new_context: NewContext, server: LiveServer) -> Page:
    page = await (await new_context()).new_page()
    await page.goto(f"{server.url}/htmx/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def test_a_fragment_published_server_side_is_swapped_in_by_htmx(
    server: LiveServer, new_context: NewContext
) -> None:
    page = await open_board(new_context, server)
    await publish_fragment(NOTE_EVENT, "server", "rendered by Django")
    # Other events on the channel are not swapped: sse-swap listens to its own event only.
    await publish_fragment("something_else", "not a note", "not a note")
    await publish_fragment(NOTE_EVENT, "again", "rendered by Django")

    notes = page.locator("#notes > li.note")
    await expect(notes).to_have_count(2)
    await expect(notes.locator(".author")).to_have_text(["server", "again"])
    await expect(notes.locator(".text")).to_have_text(["rendered by Django"] * 2)
    # The JSON string was decoded: no quotes or backslashes leaked into the page.
    await expect(page.locator("#notes")).not_to_contain_text('"')
    await expect(page.locator("#notes")).not_to_contain_text("not a note")


async def test_a_note_posted_in_one_window_appears_in_another_with_its_html_escaped(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await open_board(new_context, server)
    bob = await open_board(new_context, server)
    text = '<b>bold?</b> <img src=x onerror="window.pwned=1"> & "quotes" \\ é 😀'

    await alice.fill("input[name=author]", "<i>alice</i>")
    await alice.fill("input[name=text]", text)
    await alice.click("text=Post")

    for page in (alice, bob):
        notes = page.locator("#notes > li.note")
        await expect(notes).to_have_count(1)
        await expect(notes.locator(".author")).to_have_text("<i>alice</i>")
        await expect(notes.locator(".text")).to_have_text(text)
        # User HTML arrived as text: no element was created from it, no script ran.
        await expect(page.locator("#notes b, #notes i, #notes img")).to_have_count(0)
        assert await page.evaluate("window.pwned") is None
    # The form was reset after a successful post, ready for the next note.
    await expect(alice.locator("input[name=text]")).to_have_value("")


async def test_a_note_published_before_the_stream_opened_is_not_lost(
    server: LiveServer, new_context: NewContext
) -> None:
    """The page starts its stream from the page-load position: the log fills the gap."""
    context = await new_context()
    page = await context.new_page()
    # Hold the stream's request back until a note has been published after the render.
    released: list[str] = []

    async def hold_stream(route: Route) -> None:
        released.append("stream")
        await publish_fragment(NOTE_EVENT, "early", "before the stream")
        await route.continue_()

    await page.route("**/htmx/events/**", hold_stream)
    await page.goto(f"{server.url}/htmx/")
    await expect(page.locator("#notes > li.note .text")).to_have_text(["before the stream"])
    assert released == ["stream"]
