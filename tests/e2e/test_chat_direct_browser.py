"""A direct conversation in Chromium has what a room has: files picked and shown live on
the other person's page, replies and the thread panel, reactions; and at phone width its
composer stays on screen while the folded sidebar lists the conversation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from playwright.async_api import BrowserContext, FilePayload, expect

from tests.attachment_files import PDF, image
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import open_room, send, sign_up
from tests.e2e.test_chat_phone import PHONE, on_screen
from tests.e2e.test_chat_sidebar_browser import entry, open_index
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_files_replies_and_reactions_in_a_direct_conversation(
    server: LiveServer, new_context: NewContext
) -> None:
    bob_context = await sign_up(new_context, server.url, "bob")
    alice = await open_index(await sign_up(new_context, server.url, "alice"), server.url)
    await alice.fill("#direct-users", "bob")
    await alice.press("#direct-users", "Enter")
    await alice.wait_for_url(f"{server.url}/rooms/dm-*/")
    await expect(alice.locator("#connection")).to_have_attribute("data-state", "live")
    slug = alice.url.rstrip("/").rsplit("/", 1)[-1]
    bob = await open_room(bob_context, server.url, slug)
    await expect(bob.locator("#room-name")).to_have_text("alice")

    # Files, picked and reviewed, then shown on both pages.
    await alice.set_input_files(
        "#file-input",
        [
            FilePayload(name="chart.png", mimeType="image/png", buffer=image("PNG", (800, 600))),
            FilePayload(name="plan.pdf", mimeType="application/pdf", buffer=PDF),
        ],
    )
    await expect(alice.locator("#attached .chip-name")).to_have_text(["chart.png", "plan.pdf"])
    await send(alice, "the figures")
    for page in (alice, bob):
        message = page.locator(".message").first
        await expect(message.locator(".text")).to_have_text("the figures")
        await expect(message.locator(".file.image img")).to_have_attribute("alt", "chart.png")
        await expect(message.locator(".file:not(.image) a")).to_contain_text("plan.pdf")
    picture = bob.locator(".message .file.image img")
    await bob.wait_for_function(
        "(img) => img.complete && img.naturalWidth === 640", arg=await picture.element_handle()
    )

    # Bob replies and reacts; alice follows in the thread panel, and answers there.
    question = bob.locator(".message").first
    await question.hover()
    await question.locator("button[data-action=reply]").click()
    await expect(bob.locator("#replying")).to_contain_text("alice: the figures")
    await send(bob, "looks right")
    await question.hover()
    await question.locator("button[data-action=react]").click()
    await question.locator(".picker button[aria-label='React with 👍']").click()
    first = alice.locator(".message").first
    await expect(first.locator(".reaction")).to_have_text("👍 1")
    await expect(first.locator(".replies")).to_contain_text("1 reply")
    await first.locator(".replies").click()
    panel = alice.locator("#thread-panel")
    await expect(panel.locator("#thread-root .file.image img")).to_have_attribute(
        "alt", "chart.png"
    )
    await expect(panel.locator("#thread-replies .text")).to_have_text(["looks right"])
    await alice.locator("#thread-text").fill("thanks")
    await alice.locator("#thread-text").press("Enter")
    await expect(bob.locator(".message").first.locator(".replies")).to_contain_text("2 replies")
    assert await violations(alice) == [], "a direct conversation with files and a thread"
    await alice.locator("#thread-text").press("Escape")
    await expect(panel).to_be_hidden()

    # At phone width: the composer on screen; the folded sidebar lists the conversation,
    # the focus on it when it opens.
    await alice.set_viewport_size(PHONE)
    assert await alice.evaluate("document.documentElement.scrollHeight <= innerHeight")
    for selector in ("#text", "#attach", "#send", "#sidebar-toggle"):
        await on_screen(alice, alice.locator(selector))
    await expect(alice.locator("#sidebar")).to_be_hidden()
    await alice.click("#sidebar-toggle")
    conversation = entry(alice, "direct-rooms", "bob").locator("a")
    await expect(conversation).to_be_focused()
    await on_screen(alice, conversation)
    await on_screen(alice, alice.locator("#direct-users"))
    await alice.keyboard.press("Escape")
    await expect(alice.locator("#sidebar")).to_be_hidden()
    await on_screen(alice, alice.locator("#send"))
