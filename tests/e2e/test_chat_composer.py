"""The composer in Chromium: @-name autocomplete by keyboard and mouse, ↑ in an empty
composer edits your last message, and a message's actions show on hover and focus only,
with a delete confirmation that closes when the focus leaves it."""

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


async def test_at_names_complete_from_the_rooms_members(
    server: LiveServer, new_context: NewContext
) -> None:
    for name in ("albert", "alina", "bob"):
        account = await sync_to_async(ChatAccount)(server.url, name)
        await sync_to_async(account.say)("lobby", f"{name} was here")
        account.close()
    page = await join(new_context, server, "alice", "lobby")
    text = page.locator("#text")
    await text.press_sequentially("hi @al")
    options = page.locator("#mention-options-1 [role=option]")
    await expect(options).to_have_text(["@alina", "@albert"])  # the latest speaker first
    await expect(text).to_have_attribute("aria-activedescendant", "mention-options-1-0")
    await expect(page.locator("#mention-options-1 + [role=status]")).to_contain_text(
        "2 people match"
    )
    await text.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await expect(text).to_have_attribute("aria-activedescendant", "mention-options-1-1")
    await text.press("Enter")  # inserts, does not send
    await expect(text).to_have_value("hi @albert ")
    await expect(options).to_have_count(0)
    # Escape closes the list; the mouse picks too.
    await text.press_sequentially("and @b")
    await expect(options).to_have_text(["@bob"])
    await text.press("Escape")
    await expect(page.locator("#mention-options-1")).to_be_hidden()
    await text.press_sequentially("o")
    await page.locator("#mention-options-1 [role=option]", has_text="@bob").click()
    await expect(text).to_have_value("hi @albert and @bob ")
    await expect(text).to_be_focused()
    await text.press("Enter")
    await expect(page.locator(".message .text").last).to_have_text("hi @albert and @bob")


async def test_up_edits_your_last_message_and_actions_show_on_hover_and_focus(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    for text in ("first", "second"):
        await send(alice, text)
        await expect(alice.locator(".message .text").last).to_have_text(text)
        await expect(alice.locator("#text")).to_have_value("")  # the POST's answer came too
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await sync_to_async(bob.say)("lobby", "bob's, after alice's")
    await expect(alice.locator(".message")).to_have_count(3)
    # ↑ in the empty composer: Alice's last message (not Bob's, newer) is in the editor,
    # the caret at its end.
    await alice.locator("#text").press("ArrowUp")
    editor = alice.locator(".message").nth(1).locator(".editor")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("second")
    await alice.keyboard.type(", edited")
    await alice.keyboard.press("Enter")
    await expect(alice.locator(".message").nth(1).locator(".text")).to_have_text("second, edited")
    # ↑ does nothing of the kind in a composer with text in it.
    await alice.locator("#text").fill("draft")
    await alice.locator("#text").press("ArrowUp")
    await expect(alice.locator(".editor")).to_have_count(0)
    await alice.locator("#text").fill("")
    # Actions are hidden until the message is hovered or focused.
    first = alice.locator(".message").first
    actions = first.locator(".actions")
    await alice.mouse.move(0, 0)
    await expect(actions).to_have_css("opacity", "0")
    await first.hover()
    await expect(actions).to_have_css("opacity", "1")
    await alice.mouse.move(0, 0)
    await expect(actions).to_have_css("opacity", "0")
    await first.focus()
    await expect(actions).to_have_css("opacity", "1")
    # The delete confirmation closes when the focus leaves it: by Tab, or a click elsewhere.
    await first.locator("button[data-action=delete]").click()
    await expect(first.locator(".confirm")).to_have_text("Delete this message?")
    await alice.locator("#text").click()
    await expect(first.locator(".confirm")).to_have_count(0)
    await expect(first.locator("button[data-action=delete]")).to_have_count(1)
    await first.focus()
    await first.locator("button[data-action=delete]").focus()
    await alice.keyboard.press("Enter")
    await expect(first.locator("button[data-action=cancel-delete]")).to_be_focused()
    await alice.keyboard.press("Shift+Tab")  # to "Delete", still in the question
    await expect(first.locator(".confirm")).to_have_count(1)
    await alice.keyboard.press("Shift+Tab")  # out of it
    await expect(first.locator(".confirm")).to_have_count(0)
    await expect(alice.locator(".message .text")).to_have_count(3)
    bob.close()


async def test_a_name_chosen_while_the_list_is_asked_again_stays_chosen(
    server: LiveServer, new_context: NewContext
) -> None:
    for name in ("albert", "alina", "anna"):
        account = await sync_to_async(ChatAccount)(server.url, name)
        await sync_to_async(account.say)("lobby", f"{name} was here")
        account.close()
    page = await join(new_context, server, "alice", "lobby")
    text = page.locator("#text")
    options = page.locator("#mention-options-1 [role=option]")
    await text.press_sequentially("hi @a")
    await expect(options).to_have_text(["@anna", "@alina", "@albert"])
    narrower = await hold_requests(page, "prefix=al", "GET")
    await text.press_sequentially("l")
    await asyncio.wait_for(narrower.arrived.wait(), 10)
    # Chosen on the list still shown, before the narrower one comes.
    await text.press("ArrowDown")
    await text.press("ArrowDown")
    await expect(options.nth(2)).to_have_attribute("aria-selected", "true")
    narrower.released.set()
    await expect(options).to_have_text(["@alina", "@albert"])
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await text.press("Enter")
    await expect(text).to_have_value("hi @albert ")
