"""The live sidebar and direct messages in Chromium, with two or three users: new public
rooms, invitations and new direct conversations appear on open pages without a reload,
sorted as people sort, and start counting at once (issue 22, bug 2: an invitation and a
mention in a room the page did not list); a conversation started from a member list or a
name, by mouse and by keyboard alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from playwright.async_api import BrowserContext, Locator, Page, expect

from chat.collation import sort_key
from chat.models import Room
from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import open_room, send, sign_up
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]

#: Names whose order takes folding accents and case, and reading numbers, to get right.
NAMES = ["Zoé", "été 2026", "Ete 2025", "avril", "Room 10", "room 9", "Äpfel", "apfel", "Ωmega"]


async def open_index(context: BrowserContext, base_url: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base_url}/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


def names(page: Page, list_id: str) -> Locator:
    return page.locator(f"#{list_id} > li .room-label")


def entry(page: Page, list_id: str, name: str) -> Locator:
    return page.locator(f"#{list_id} > li").filter(has=page.locator(".room-label", has_text=name))


async def test_the_page_sorts_as_the_server_sorts(
    server: LiveServer, new_context: NewContext
) -> None:
    page = await open_index(await sign_up(new_context, server.url, "alice"), server.url)
    in_browser = await page.evaluate(
        "(names) => [...names].sort(chatSidebar.compareNames)", list(reversed(NAMES))
    )
    assert in_browser == sorted(NAMES, key=sort_key)


async def test_new_rooms_invitations_and_conversations_appear_live(
    server: LiveServer, new_context: NewContext, settings: object
) -> None:
    settings.CHAT_RATE_LIMITS = {"room": (100, 100, 60.0)}  # type: ignore[attr-defined]
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    alice_context = await sign_up(new_context, server.url, "alice")
    index = await open_index(alice_context, server.url)
    room = await open_room(alice_context, server.url, "lobby")
    # Public rooms, created by someone else: listed in order on both pages, no reload.
    for name in NAMES:
        private = name in ("Äpfel", "Room 10")
        await sync_to_async(bob.create_room)(name, private=private)
    public = sorted(
        [n for n in NAMES if n not in ("Äpfel", "Room 10")] + ["Lobby", "Random"], key=sort_key
    )
    await expect(names(index, "public-rooms")).to_have_text(public)
    await expect(names(room, "public-rooms")).to_have_text(public)
    await expect(index.locator("#public-count")).to_have_text(str(len(public)))
    await expect(entry(index, "my-rooms", "Äpfel")).to_have_count(0)  # not invited
    # An invitation, then a mention there at once: listed among alice's rooms, and counted.
    slug = await sync_to_async(lambda: Room.objects.get(name="Äpfel").slug)()
    await sync_to_async(bob.form)(f"/rooms/{slug}/invite/", username="alice")
    await sync_to_async(bob.say)(slug, "@alice look")
    for page in (index, room):
        invited = entry(page, "my-rooms", "Äpfel")
        await expect(invited).to_have_count(1)
        await expect(invited.locator("[data-unread-for]")).to_contain_text(
            "1 unread, 1 mentioning you"
        )
    await expect(names(index, "my-rooms")).to_have_text(["Äpfel"])
    await sync_to_async(bob.say)(slug, "and again")
    await expect(entry(room, "my-rooms", "Äpfel").locator("[data-unread-for]")).to_contain_text(
        "2 unread"
    )
    # A direct conversation bob starts, and his first message: listed and counted.
    await sync_to_async(bob.api)("POST", "/api/direct/", {"users": ["alice"]})
    direct = await sync_to_async(lambda: Room.objects.get(direct=True).slug)()
    await sync_to_async(bob.say)(direct, "psst")
    for page in (index, room):
        conversation = entry(page, "direct-rooms", "bob")
        await expect(conversation.locator("[data-unread-for]")).to_contain_text("1 unread")
        await expect(conversation.locator(".avatar")).to_have_text("B")
    # Renamed and deleted rooms follow.
    zoe = await sync_to_async(lambda: Room.objects.get(name="Zoé").slug)()
    await sync_to_async(bob.api)("PATCH", f"/api/rooms/{zoe}/", {"name": "Aardvark"})
    await expect(names(index, "public-rooms").first).to_have_text("Aardvark")
    await sync_to_async(bob.api)("DELETE", f"/api/rooms/{slug}/")
    for page in (index, room):
        await expect(entry(page, "my-rooms", "Äpfel")).to_have_count(0)
    # Nothing was reloaded: the pages never left their first stream position behind.
    for page in (index, room):
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        assert await page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
        assert await page.evaluate("() => window.chatSidebar !== undefined")
    # The conversation opens, its slug nowhere people read.
    await entry(index, "direct-rooms", "bob").locator("a").click()
    await expect(index.locator("#room-name")).to_have_text("bob")
    await expect(index.locator(".message .text")).to_have_text(["psst"])
    await expect(index).to_have_title("bob · pgsse chat")
    assert direct not in await index.locator("body").inner_text()
    bob.close()


async def test_a_conversation_starts_from_a_member_list_and_reaches_the_other_live(
    server: LiveServer, new_context: NewContext
) -> None:
    bob_context = await sign_up(new_context, server.url, "bob")
    bob_room = await open_room(bob_context, server.url, "lobby")
    await send(bob_room, "bob in the lobby")
    alice = await open_room(await sign_up(new_context, server.url, "alice"), server.url, "lobby")
    await alice.get_by_role("button", name="Message bob directly").click()
    await expect(alice.locator("#room-name")).to_have_text("bob")
    await expect(alice.locator("#members .member-name")).to_have_text(["alice", "bob"])
    await expect(alice.locator("#connection")).to_have_attribute("data-state", "live")
    assert await violations(alice) == [], "a direct conversation"
    await send(alice, "hello bob")
    conversation = entry(bob_room, "direct-rooms", "alice")
    await expect(conversation.locator("[data-unread-for]")).to_contain_text("1 unread")
    await conversation.locator("a").click()
    await expect(bob_room.locator(".message .text")).to_have_text(["hello bob"])
    await send(bob_room, "hi alice")
    await expect(alice.locator(".message .text")).to_have_text(["hello bob", "hi alice"])
    # Members are fixed: no Leave, no Invite, no Room settings.
    for page in (alice, bob_room):
        await expect(
            page.locator("#leave-form, #join-form, #invite-form, #settings-link")
        ).to_have_count(0)


async def test_a_conversation_starts_from_a_name_by_keyboard_alone(
    server: LiveServer, new_context: NewContext
) -> None:
    for name in ("bob", "carol"):
        await sync_to_async(User.objects.create_user)(name)
    index = await open_index(await sign_up(new_context, server.url, "alice"), server.url)
    await index.locator(".brand").focus()
    for _ in range(30):
        await index.keyboard.press("Tab")
        if await index.evaluate("() => document.activeElement.id") == "direct-users":
            break
    await expect(index.locator("#direct-users")).to_be_focused()
    await index.keyboard.type("carol, @bob")
    await index.keyboard.press("Enter")
    await expect(index.locator("#room-name")).to_have_text("bob, carol")
    await expect(index.locator("#connection")).to_have_attribute("data-state", "live")
    # A name that is nobody's is refused where it was typed, saying so.
    await index.fill("#direct-users", "nobody")
    await index.press("#direct-users", "Enter")
    await expect(index.locator(".notice.error")).to_have_text("There is no user called 'nobody'.")


async def test_the_keyboard_skips_the_sidebar_and_reaches_a_member_list(
    server: LiveServer, new_context: NewContext, settings: object
) -> None:
    settings.CHAT_RATE_LIMITS = {"room": (100, 100, 60.0)}  # type: ignore[attr-defined]
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await sync_to_async(bob.say)("lobby", "bob is a member")
    alice_context = await sign_up(new_context, server.url, "alice")
    alice_api = await sync_to_async(ChatAccount)(server.url, "alice", signup=False)
    for n in range(12):
        await sync_to_async(alice_api.create_room)(f"Room {n}")
    page = await open_room(alice_context, server.url, "lobby")
    # The first Tab reaches "Skip to the message box", past a dozen rooms' links.
    await page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("#text")).to_be_focused()
    # The member list's Message button, by keyboard.
    button = page.get_by_role("button", name="Message bob directly")
    await button.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#room-name")).to_have_text("bob")
    alice_api.close()
    bob.close()
