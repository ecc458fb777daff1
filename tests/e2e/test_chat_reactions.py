"""Reactions in Chromium, two users: added from the picker and by keyboard, counts live on
both pages, taken back by pressing the chip, who reacted on hover and on focus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import hold_requests, join, send
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_reactions_live_for_everyone_with_who_reacted(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "ship it?")
    message = bob.locator(".message").first
    await expect(message.locator(".text")).to_have_text("ship it?")
    # Bob, with the mouse: React, then 👍 in the picker.
    await message.hover()
    await message.locator("button[data-action=react]").click()
    await message.locator(".picker button[aria-label='React with 👍']").click()
    for page in (alice, bob):
        chip = page.locator(".message").first.locator(".reaction")
        await expect(chip).to_have_text("👍 1")
    mine = bob.locator(".message").first.locator(".reaction")
    await expect(mine).to_have_attribute("aria-pressed", "true")
    await expect(alice.locator(".message").first.locator(".reaction")).to_have_attribute(
        "aria-pressed", "false"
    )
    # Alice, by keyboard only: ↑ then Escape puts her on her message; Tab to React,
    # Enter opens the picker on 👍, → moves to ❤️, Enter picks it.
    await alice.locator("#text").press("ArrowUp")
    await alice.keyboard.press("Escape")
    await alice.keyboard.press("Tab")
    await alice.keyboard.press("Tab")
    await expect(alice.locator("button[data-action=react]")).to_be_focused()
    await alice.keyboard.press("Enter")
    await expect(alice.locator(".picker button").first).to_be_focused()
    await alice.keyboard.press("ArrowRight")
    await alice.keyboard.press("Enter")
    await expect(alice.locator(".picker")).to_have_count(0)
    for page in (alice, bob):
        chips = page.locator(".message").first.locator(".reaction")
        await expect(chips).to_have_text(["👍 1", "❤️ 1"])
    # Alice adds 👍 too, with the chip: 2, and who reacted shows on hover and on focus.
    await alice.locator(".message").first.locator(".reaction").first.click()
    thumbs = bob.locator(".message").first.locator(".reaction").first
    await expect(thumbs).to_have_text("👍 2")
    await thumbs.hover()
    tip = bob.locator(".message").first.locator(".who").first
    await expect(tip).to_be_visible()
    await expect(tip).to_have_text("you, alice reacted with 👍")
    await bob.mouse.move(0, 0)
    await expect(tip).to_be_hidden()
    await thumbs.focus()
    await expect(tip).to_be_visible()
    described = await thumbs.get_attribute("aria-describedby")
    assert described == await tip.get_attribute("id")
    # Bob takes his back by pressing his chip: Alice's page follows. (Chips are in the
    # order of their emoji's oldest reaction: 👍 now comes after ❤️.)
    await bob.keyboard.press("Enter")
    await expect(alice.locator(".message").first.locator(".reaction")).to_have_text(["❤️ 1", "👍 1"])
    bobs = bob.locator(".message").first.locator(".reaction[data-emoji='👍']")
    await expect(bobs).to_have_attribute("aria-pressed", "false")
    await expect(bobs).to_be_focused()
    # A page opened now shows the same, with its user's own marked.
    again = await join(new_context, server, "carol", "lobby")
    await expect(again.locator(".message").first.locator(".reaction")).to_have_text(["❤️ 1", "👍 1"])


async def test_a_reaction_answered_late_leaves_the_focus_where_the_user_moved_it(
    server: LiveServer, new_context: NewContext
) -> None:
    """Alice presses a chip; before her answer comes, Bob's reaction redraws the chips and
    Alice moves on to the composer: her answer does not pull the focus back."""
    alice = await join(new_context, server, "alice", "lobby")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await send(alice, "ship it?")
    message = alice.locator(".message").first
    message_id = await message.get_attribute("data-id")
    url = f"/api/rooms/lobby/messages/{message_id}/reactions/"

    def react(emoji: str) -> None:
        assert bob.api("POST", url, {"emoji": emoji}).status_code in (200, 201)

    await sync_to_async(react)("👍")
    chip = message.locator(".reaction[data-emoji='👍']")
    await expect(chip).to_have_text("👍 1")
    answer = await hold_requests(alice, "/reactions/", "POST")
    await chip.click()
    await asyncio.wait_for(answer.arrived.wait(), 10)
    await sync_to_async(react)("❤️")
    await expect(message.locator(".reaction")).to_have_text(["👍 1", "❤️ 1"])
    composer = alice.locator("#text")
    await composer.focus()
    answer.released.set()
    await expect(chip).to_have_attribute("aria-pressed", "true")
    await expect(message.locator(".reaction")).to_have_text(["👍 2", "❤️ 1"])
    await expect(composer).to_be_focused()
    await sync_to_async(bob.close)()


async def test_a_late_answer_leaves_the_picker_opened_meanwhile_open(
    server: LiveServer, new_context: NewContext
) -> None:
    """Alice presses a chip, then opens the React picker on the same message before her
    answer comes: the answer redraws the chips, and leaves her in the picker."""
    alice = await join(new_context, server, "alice", "lobby")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await send(alice, "lunch?")
    message = alice.locator(".message").first
    message_id = await message.get_attribute("data-id")
    url = f"/api/rooms/lobby/messages/{message_id}/reactions/"
    response = await sync_to_async(bob.api)("POST", url, {"emoji": "🎉"})
    assert response.status_code in (200, 201)
    chip = message.locator(".reaction[data-emoji='🎉']")
    await expect(chip).to_have_text("🎉 1")
    answer = await hold_requests(alice, "/reactions/", "POST")
    await chip.click()
    await asyncio.wait_for(answer.arrived.wait(), 10)
    await message.hover()
    await message.locator("button[data-action=react]").click()
    first_pick = message.locator(".picker button").first
    await expect(first_pick).to_be_focused()
    answer.released.set()
    await expect(chip).to_have_text("🎉 2")
    await expect(chip).to_have_attribute("aria-pressed", "true")
    await expect(first_pick).to_be_focused()
    await alice.keyboard.press("ArrowRight")
    await alice.keyboard.press("Enter")  # ❤️, the picker's second
    await expect(message.locator(".reaction")).to_have_text(["🎉 2", "❤️ 1"])
    await sync_to_async(bob.close)()


async def test_a_double_click_on_a_chip_asks_once(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    await send(alice, "double trouble")
    message = alice.locator(".message").first
    await message.hover()
    await message.locator("button[data-action=react]").click()
    await message.locator(".picker button[aria-label='React with 👀']").click()
    chip = message.locator(".reaction[data-emoji='👀']")
    await expect(chip).to_have_attribute("aria-pressed", "true")
    asked: list[str] = []
    alice.on(
        "request",
        lambda request: asked.append(request.method) if "/reactions/" in request.url else None,
    )
    await chip.dblclick()
    await expect(message.locator(".reaction")).to_have_count(0)
    await send(alice, "and after")  # the page has sent whatever it was going to meanwhile
    await expect(alice.locator(".message")).to_have_count(2)
    assert asked == ["DELETE"]
