"""A page whose stream replays across redacted events, in Chromium: it shows an edited
message whose creation it never saw (its newest text only), and a deletion of a message it
never showed changes nothing.

The page's stream request is held back after the page has rendered (its position and its
history): the message is posted, edited, and another posted and deleted meanwhile, so the
stream replays their creations as id-only frames (redacted) and then the edit and the
deletion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Route, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import sign_up
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]

#: Records every message text the page ever draws.
RECORD_TEXTS = """
window.drawnTexts = [];
new MutationObserver((changes) => {
  for (const change of changes) {
    for (const node of change.addedNodes) {
      if (node.nodeType !== 1) continue;
      for (const text of node.matches(".text") ? [node] : node.querySelectorAll(".text")) {
        window.drawnTexts.push(text.textContent);
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


async def test_a_page_shows_only_the_newest_text_of_a_message_it_never_saw_created(
    server: LiveServer, new_context: NewContext
) -> None:
    context = await sign_up(new_context, server.url, "bob")
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    page = await context.new_page()
    await page.add_init_script(RECORD_TEXTS)
    release = asyncio.Event()

    async def hold(route: Route) -> None:
        await release.wait()
        await route.continue_()

    await page.route(lambda url: "/rooms/lobby/events/" in url, hold)
    await page.goto(f"{server.url}/rooms/lobby/")
    await expect(page.locator("#empty-room")).to_be_visible()

    def meanwhile() -> None:
        sent = alice.say("lobby", "first version")
        url = f"/api/rooms/lobby/messages/{sent['id']}/"
        assert alice.api("PATCH", url, {"text": "second version"}).status_code == 200
        gone = alice.say("lobby", "never to be seen")
        url = f"/api/rooms/lobby/messages/{gone['id']}/"
        assert alice.api("DELETE", url).status_code == 204

    await sync_to_async(meanwhile)()
    release.set()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator(".message .text")).to_have_text(["second version"])
    await expect(page.locator(".message .edited")).to_have_text(["(edited)"])
    await sync_to_async(alice.say)("lobby", "and after")
    await expect(page.locator(".message .text")).to_have_text(["second version", "and after"])
    drawn = await page.evaluate("window.drawnTexts")
    assert "first version" not in drawn
    assert "never to be seen" not in drawn
    await sync_to_async(alice.close)()
