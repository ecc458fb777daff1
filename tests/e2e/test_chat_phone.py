"""The room page at phone width (360 px), in Chromium: the composer always on screen, the
room list folded behind a button (reached and left by keyboard), nothing to type below
the fold, and "Here now" never showing 0 for the page's own user."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.utils.text import slugify
from playwright.async_api import BrowserContext, Locator, Page, ViewportSize, expect

from chat.models import Message, Room
from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import open_room, sign_up, unread_badge
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]
PHONE = ViewportSize(width=360, height=740)
#: What the phone's on-screen keyboard leaves of the screen (the layout viewport shrinks
#: with it: the page's viewport asks for interactive-widget=resizes-content).
PHONE_WITH_KEYBOARD = ViewportSize(width=360, height=420)


async def on_screen(page: Page, locator: Locator) -> None:
    """``locator`` is wholly inside the window: nothing of it cut off or below the fold."""
    box = await locator.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert size is not None
    assert box["x"] >= 0
    assert box["y"] >= 0
    assert box["x"] + box["width"] <= size["width"] + 0.5
    assert box["y"] + box["height"] <= size["height"] + 0.5


ROOMS = ("Design", "Ops", "Support", "Releases", "Hiring", "A rather long room name")


@sync_to_async
def busy_rooms(server: LiveServer) -> ChatAccount:
    """Eight rooms, and 60 messages in the lobby (made directly: past the rate limits)."""
    bob = ChatAccount(server.url, "bob")
    user = User.objects.get(username="bob")
    for name in ROOMS:
        Room.objects.create(slug=slugify(name), name=name)
    lobby = Room.objects.get(slug="lobby")
    for n in range(60):
        text = f"message {n} " + "with some words " * (n % 4)
        Message.objects.create(room=lobby, author=user, author_name="bob", text=text)
    return bob


async def test_the_composer_stays_on_screen_and_the_room_list_folds(
    server: LiveServer, new_context: NewContext
) -> None:
    bob = await busy_rooms(server)
    carol = await sign_up(new_context, server.url, "carol")
    page = await carol.new_page()
    await page.set_viewport_size(PHONE)
    await page.goto(f"{server.url}/rooms/random/")  # carol joins #random by posting
    await page.fill("#text", "hi")
    await page.press("#text", "Enter")
    await expect(page.locator(".message .text")).to_have_text(["hi"])
    await page.close()
    page = await open_room(carol, server.url, "lobby")
    await page.set_viewport_size(PHONE)
    await expect(page.locator(".message")).to_have_count(50)
    # The page does not scroll; only the messages do.
    assert await page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    for selector in ("#text", "#send", "#attach", "#sidebar-toggle", "#connection"):
        await on_screen(page, page.locator(selector))
    # The room list is folded; its button counts what waits elsewhere.
    await expect(page.locator("#sidebar")).to_be_hidden()
    await sync_to_async(bob.say)("random", "still here?")
    await expect(page.locator("#sidebar-unread")).to_contain_text("1 unread in other rooms")
    # Scrolled to the oldest message, and with the keyboard up: the composer stays.
    await page.locator("#scroller").evaluate("(node) => { node.scrollTop = 0; }")
    await on_screen(page, page.locator("#send"))
    await page.set_viewport_size(PHONE_WITH_KEYBOARD)
    await page.focus("#text")
    for selector in ("#text", "#send", "#attach"):
        await on_screen(page, page.locator(selector))
    await page.set_viewport_size(PHONE)
    # A long message being typed grows the box, not the page.
    await page.fill("#text", "line\n" * 40)
    await on_screen(page, page.locator("#send"))
    assert await page.evaluate("document.documentElement.scrollHeight <= innerHeight")
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        await page.fill("#text", "")
        await page.screenshot(path="/tmp/phone-room.png")
    bob.close()


async def test_the_folded_room_list_is_reached_and_left_by_keyboard(
    server: LiveServer, new_context: NewContext
) -> None:
    bob = await busy_rooms(server)
    carol = await sign_up(new_context, server.url, "carol")
    page = await open_room(carol, server.url, "lobby")
    await page.set_viewport_size(PHONE)
    toggle = page.locator("#sidebar-toggle")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    # From the top of the page, Tab reaches the button before the messages.
    await page.locator(".brand").focus()
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await toggle.evaluate("(node) => node === document.activeElement"):
            break
    await expect(toggle).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    current = page.locator('#sidebar a[aria-current="page"]')
    await expect(current).to_be_focused()
    await on_screen(page, page.locator("#sidebar a", has_text="#random"))
    await expect(page.locator("#presence li")).to_have_text(["carol"])
    assert await violations(page) == [], "sidebar open"
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        await page.screenshot(path="/tmp/phone-sidebar.png")
    # Escape folds it and returns to the button.
    await page.keyboard.press("Escape")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(toggle).to_be_focused()
    await expect(page.locator("#sidebar")).to_be_hidden()
    # Open again, go to another room with the keyboard.
    await page.keyboard.press("Enter")
    await expect(current).to_be_focused()
    random = page.locator("#sidebar a", has_text="#random")
    for _ in range(12):
        await page.keyboard.press("Tab")
        if await random.evaluate("(node) => node === document.activeElement"):
            break
    await expect(random).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{server.url}/rooms/random/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#sidebar")).to_be_hidden()
    assert await violations(page) == [], "sidebar folded"
    # Clicking outside folds it too.
    await page.click("#sidebar-toggle")
    await expect(page.locator("#sidebar")).to_be_visible()
    await page.mouse.click(PHONE["width"] - 8, PHONE["height"] // 2)  # beside the panel
    await expect(page.locator("#sidebar")).to_be_hidden()
    await expect(unread_badge(page, "lobby")).to_be_hidden()
    bob.close()


async def test_nothing_to_type_is_below_the_fold(
    server: LiveServer, new_context: NewContext
) -> None:
    bob = await busy_rooms(server)
    owner = await sign_up(new_context, server.url, "carol")
    page = await owner.new_page()
    await page.set_viewport_size(PHONE)
    # On the room list, the new room's name and the names to message come before the
    # eight rooms.
    await page.goto(f"{server.url}/")
    await on_screen(page, page.locator("#room-name"))
    await on_screen(page, page.locator("#direct-users"))
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        await page.screenshot(path="/tmp/phone-index.png")
    await page.fill("#room-name", "Plans")
    await page.check("input[name=private]")
    await page.click("#new-room button[type=submit]")
    await page.wait_for_url(f"{server.url}/rooms/plans-*/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    # The owner's invitation field and the composer, both on screen.
    for selector in ("#invite-username", "#text", "#send"):
        await on_screen(page, page.locator(selector))
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        await page.screenshot(path="/tmp/phone-private.png")
    bob.close()


async def test_here_now_never_shows_zero_for_the_pages_own_user(
    server: LiveServer, new_context: NewContext
) -> None:
    carol = await sign_up(new_context, server.url, "carol")
    page = await carol.new_page()
    counts: list[str] = []
    await page.expose_function("seen", lambda text: counts.append(text))
    # Every value the count takes, from the first paint on.
    await page.add_init_script(
        """document.addEventListener("DOMContentLoaded", () => {
          const count = document.getElementById("presence-count");
          window.seen(count.textContent);
          new MutationObserver(() => window.seen(count.textContent))
            .observe(count, {childList: true, characterData: true, subtree: true});
        });"""
    )
    await page.goto(f"{server.url}/rooms/lobby/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("#presence li")).to_have_text(["carol"])
    dave = await open_room(await sign_up(new_context, server.url, "dave"), server.url, "lobby")
    await expect(page.locator("#presence li")).to_have_text(["carol", "dave"])
    await dave.close()
    await expect(page.locator("#presence li")).to_have_text(["carol"])
    assert counts[0] == "1"
    assert "0" not in counts, counts


async def test_a_tap_on_a_message_shows_its_actions(
    server: LiveServer, new_context: NewContext
) -> None:
    """A touch screen has no hover: the first tap on a message focuses it and shows its
    actions, and never lands on one of them while they are hidden."""

    async def phone(**options: object) -> BrowserContext:
        return await new_context(has_touch=True, is_mobile=True, viewport=PHONE, **options)

    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await sync_to_async(bob.say)("lobby", "lunch at noon?")
    page = await open_room(await sign_up(phone, server.url, "carol"), server.url, "lobby")
    assert await page.evaluate("matchMedia('(hover: none)').matches")
    message = page.locator(".message").first
    actions = message.locator(".actions")
    reply = message.locator("button[data-action=reply]")
    await expect(actions).to_have_css("opacity", "0")
    # Tapped where the hidden Reply button is: the message takes the tap.
    box = await reply.bounding_box()
    assert box is not None
    await page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await expect(message).to_be_focused()
    await expect(actions).to_have_css("opacity", "1")
    await expect(page.locator("#replying")).to_be_hidden()
    # Now shown, Reply answers a tap; the composer, with what it answers, stays on screen.
    await reply.tap()
    await expect(page.locator("#replying-text")).to_have_text("bob: lunch at noon?")
    await expect(page.locator("#text")).to_be_focused()
    await expect(actions).to_have_css("opacity", "0")
    for selector in ("#replying", "#text", "#send"):
        await on_screen(page, page.locator(selector))
    await sync_to_async(bob.close)()
