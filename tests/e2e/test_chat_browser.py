"""The chat in a real browser: Debian's Chromium driven by Playwright, real server and DB."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def join(new_context: NewContext, server: LiveServer, name: str, room: str) -> Page:
    context = await new_context()
    page = await context.new_page()
    await page.goto(f"{server.url}/rooms/{room}/")
    await page.fill("#name", name)
    await page.click("text=Join the chat")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def send(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def test_two_windows_see_each_others_messages_live_and_once(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    elsewhere = await join(new_context, server, "carol", "random")

    await send(alice, "hi bob")
    for page in (alice, bob):
        await expect(page.locator(".message .text")).to_have_text(["hi bob"], timeout=2000)
    await send(bob, "hi alice <b>not bold</b>")
    for page in (alice, bob):
        await expect(page.locator(".message .text")).to_have_text(
            ["hi bob", "hi alice <b>not bold</b>"], timeout=2000
        )
        await expect(page.locator(".message b")).to_have_count(0)
    # The other room stayed empty, though its stream is live.
    await expect(elsewhere.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(elsewhere.locator(".message")).to_have_count(0)
