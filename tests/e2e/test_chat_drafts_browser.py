"""What a user was writing survives the reload a page makes by itself: when a room it
follows is taken away (the stream's rooms changed), the room page reloads, and puts back
the message being written and the thread open with its reply. Once: a reload the user
makes later starts afresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import open_room, send, sign_up
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_a_room_taken_away_reloads_the_page_with_what_was_being_written(
    server: LiveServer, new_context: NewContext
) -> None:
    carol = await sync_to_async(ChatAccount)(server.url, "carol")
    context = await sign_up(new_context, server.url, "alice")
    slug = await sync_to_async(carol.create_room)("Den", private=True)
    invited = await sync_to_async(carol.form)(f"/rooms/{slug}/invite/", username="alice")
    assert invited.status_code in (200, 302)
    page = await open_room(context, server.url, "lobby")  # its sidebar counts the Den live
    await send(page, "a thread")
    first = page.locator(".message").first
    await first.hover()
    await first.locator("button[data-action=reply]").click()
    await send(page, "its first reply")
    await page.locator(".message").first.locator(".replies").click()
    await expect(page.locator("#thread-replies .text")).to_have_text(["its first reply"])
    await page.locator("#thread-text").fill("half a reply")
    await page.locator("#text").fill("half a message")
    async with page.expect_event("load", timeout=30_000):
        removed = await sync_to_async(carol.form)(f"/rooms/{slug}/remove/", username="alice")
        assert removed.status_code in (200, 302)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#text")).to_have_value("half a message")
    await expect(page.locator("#thread-panel")).to_be_visible()
    await expect(page.locator("#thread-replies .text")).to_have_text(["its first reply"])
    await expect(page.locator("#thread-text")).to_have_value("half a reply")
    await expect(page.locator(f'a[href="/rooms/{slug}/"]')).to_have_count(0)
    # Kept for that one reload only.
    await page.reload()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#text")).to_have_value("")
    await expect(page.locator("#thread-panel")).to_be_hidden()
    await sync_to_async(carol.close)()
