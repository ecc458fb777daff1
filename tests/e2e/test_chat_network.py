"""A page that lost the network reconnects when the browser says it is back online, at
once, not when its retry timer runs out; and misses nothing posted meanwhile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import open_room, send, sign_up, unread_badge
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.mark.parametrize("page_kind", ["room", "index"])
async def test_back_online_reconnects_at_once(
    server: LiveServer, new_context: NewContext, page_kind: str
) -> None:
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    context = await sign_up(new_context, server.url, "alice")
    joining = await open_room(context, server.url, "lobby")  # a member: the list counts
    await send(joining, "hello")
    await expect(joining.locator(".message")).to_have_count(1)
    await joining.close()
    page = await context.new_page()
    # The page's timers run on a clock the test holds: once it is paused, a retry timer
    # never fires, and only the "online" event can bring the stream back.
    await page.clock.install()
    await page.goto(f"{server.url}/rooms/lobby/" if page_kind == "room" else f"{server.url}/")
    status = page.locator("#connection")
    await expect(status).to_have_attribute("data-state", "live")
    await page.clock.pause_at(datetime.now() + timedelta(seconds=1))
    await context.set_offline(True)
    await expect(status).to_have_text("offline, waiting for the network…")
    await expect(status).to_have_attribute("data-state", "reconnecting")
    await sync_to_async(bob.say)("lobby", "posted while alice was offline")
    await context.set_offline(False)
    await expect(status).to_have_attribute("data-state", "live")
    if page_kind == "room":
        await expect(page.locator(".message .text")).to_have_text(
            ["hello", "posted while alice was offline"]
        )
    else:
        await expect(unread_badge(page, "lobby")).to_contain_text("1 unread")
    bob.close()
