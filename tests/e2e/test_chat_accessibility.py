"""axe-core (vendored in tests/e2e/vendor/) run in Chromium on the chat's pages: no serious
or critical violation on the room list, a room, sign-up and log-in; and the keyboard
reaches Edit and Delete without making them tab stops before the composer."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Page, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import open_room, send, sign_up
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
BLOCKING = {"serious", "critical"}


async def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("async () => await axe.run(document)")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]],
        }
        for violation in result["violations"]
        if violation["impact"] in BLOCKING
    ]


async def test_the_pages_have_no_serious_accessibility_violations(
    server: LiveServer, new_context: NewContext
) -> None:
    visitor = await (await new_context()).new_page()
    for path in ("/accounts/login/", "/accounts/signup/"):
        await visitor.goto(f"{server.url}{path}")
        assert await violations(visitor) == [], path
    # A failed log-in shows its errors: still accessible.
    await visitor.goto(f"{server.url}/accounts/login/")
    await visitor.fill("#id_username", "nobody")
    await visitor.fill("#id_password", "wrong password")
    await visitor.click("button[type=submit]")
    assert await violations(visitor) == [], "failed log-in"

    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    alice_context = await sign_up(new_context, server.url, "alice")
    room = await open_room(alice_context, server.url, "lobby")
    assert await violations(room) == [], "empty room"
    await send(room, "hello @bob, see https://example.com")
    await sync_to_async(bob.say)("lobby", "hi @alice")
    await expect(room.locator(".message")).to_have_count(2)
    await room.fill("#text", "x" * 3900)  # the counter shows
    assert await violations(room) == [], "room with messages"
    index = await alice_context.new_page()
    await index.goto(f"{server.url}/")
    assert await violations(index) == [], "room list"
    # The check sees what it must: an unlabelled field is a critical violation.
    await index.evaluate("() => document.body.append(document.createElement('input'))")
    assert [v["id"] for v in await violations(index)] == ["label"]
    bob.close()


async def test_edit_and_delete_are_reached_by_keyboard_not_by_tabbing_past_them(
    server: LiveServer, new_context: NewContext
) -> None:
    page = await open_room(await sign_up(new_context, server.url, "alice"), server.url, "lobby")
    for text in ("first", "second"):
        await send(page, text)
        await expect(page.locator(".message .text").last).to_have_text(text)
        # The stream may show the message before the POST's answer empties the box: ↑
        # edits only from an empty box.
        await expect(page.locator("#text")).to_have_value("")
    # Tabbing from the top of the page reaches the composer without passing any message
    # or its buttons.
    await page.locator(".brand").focus()
    stops: list[str] = []
    for _ in range(20):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => document.activeElement.id || document.activeElement.className"
            " || document.activeElement.tagName"
        )
        stops.append(focused)
        if focused == "text":
            break
    assert stops[-1] == "text", stops
    assert not any("action" in stop or "message" in stop for stop in stops), json.dumps(stops)
    # From the empty composer, ↑ edits one's last message; Escape leaves the editor on it,
    # where ↑/↓ move between messages and Tab reaches their buttons.
    await page.keyboard.press("ArrowUp")
    last = page.locator(".message").last
    await expect(page.locator(".editor")).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(last).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(page.locator(".message").first).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(last).to_be_focused()
    for _ in range(3):  # Reply, React, Edit
        await page.keyboard.press("Tab")
    await expect(last.locator("button[data-action=edit]")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator(".editor")).to_be_focused()
    await page.keyboard.press("Control+a")
    await page.keyboard.type("second, edited")
    await page.keyboard.press("Enter")
    await expect(last.locator(".text")).to_have_text("second, edited")
    # Delete asks first; the focus lands on "Keep", the safe answer.
    await expect(last).to_be_focused()
    for _ in range(4):  # Reply, React, Edit, Delete
        await page.keyboard.press("Tab")
    await expect(last.locator("button[data-action=delete]")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(last.locator("button[data-action=cancel-delete]")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(page.locator(".message .text")).to_have_text(["first"])
    # Escape goes back to the composer.
    await page.keyboard.press("ArrowUp")
    await page.keyboard.press("Escape")
    await expect(page.locator(".message").first).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#text")).to_be_focused()
