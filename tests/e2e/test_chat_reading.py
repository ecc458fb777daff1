"""Reading a busy chat, with two users in two browser contexts: unread counts, the
new-messages pill, mentions, the length counter, presence after a reconnect, and typing
notices that never outlive their message."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Page, expect

from chat import presence
from chat.models import Membership, Presence, Room
from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import open_room, send, sign_up, unread_badge, until
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def open_index(context: BrowserContext, base_url: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{base_url}/")
    return page


async def set_visibility(page: Page, state: str) -> None:
    """What the browser does when the tab goes to the background, or comes back."""
    await page.evaluate(
        """(state) => {
            Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


async def test_unread_counts_rise_live_and_clear_when_the_room_is_opened(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    bob = await open_room(await sign_up(new_context, server.url, "bob"), server.url, "random")
    # Alice joins #random, and follows her room list in another page.
    joined = await open_room(alice_context, server.url, "random")
    await joined.click("text=Join")
    # Closed once the page the form led to is up: Chromium may hang closing a page in the
    # middle of a navigation.
    await expect(joined.locator("#connection")).to_have_attribute("data-state", "live")
    await joined.close()
    rooms = await open_index(alice_context, server.url)
    badge = unread_badge(rooms, "random")
    await expect(badge).to_be_hidden()
    await send(bob, "one")
    await expect(badge).to_contain_text("1 unread")
    await send(bob, "two")
    await expect(badge).to_contain_text("2 unread")
    # While the list's tab is hidden, its title carries the total.
    await set_visibility(rooms, "hidden")
    await send(bob, "three")
    await expect(rooms).to_have_title("(3) pgsse chat")
    await set_visibility(rooms, "visible")
    await expect(rooms).to_have_title("pgsse chat")
    # Opening the room reads it: the divider marks where the unread messages start,
    # and the list's count clears live.
    await send(bob, "four")
    await expect(badge).to_contain_text("4 unread")
    room = await open_room(alice_context, server.url, "random")
    await expect(room.locator("li.divider.first-unread + li.message .text")).to_have_text("one")
    await expect(badge).to_be_hidden()
    # A message arriving while the room page is visible is read there at once.
    await send(bob, "five")
    await expect(room.locator(".message .text").last).to_have_text("five")
    await expect(badge).to_contain_text("1 unread")
    await expect(badge).to_be_hidden()


async def test_mentions_are_highlighted_and_counted_apart(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    alice = await open_room(alice_context, server.url, "lobby")
    bob = await join_room(new_context, server, "bob", "lobby")
    await send(alice, "hello everyone")
    await expect(bob.locator(".message")).to_have_count(1)
    rooms = await open_index(alice_context, server.url)
    await send(bob, "@alice could you look at this?")
    mention = alice.locator(".message.mentions-me")
    await expect(mention).to_have_count(1)
    await expect(mention.locator(".mention.me")).to_have_text("@alice")
    # Alice's own message looks different from others'.
    await expect(alice.locator(".message.mine .text")).to_have_text(["hello everyone"])
    await expect(bob.locator(".message.mine .text")).to_have_text(
        ["@alice could you look at this?"]
    )
    # In the room list, a count with a mention is marked as one. (First, the open room
    # page has read the mention: it marks what arrives while it is visible.)
    mention_id = int(await mention.get_attribute("data-id") or 0)
    await until(
        lambda: (
            Membership.objects.get(user__username="alice", room__slug="lobby").last_read_id
            >= mention_id
        )
    )
    await alice.close()
    await send(bob, "and @alice again")
    badge = unread_badge(rooms, "lobby")
    await expect(badge).to_have_class("unread mentioned")
    await expect(badge).to_contain_text("1 unread, 1 mentioning you")
    # Browser notifications are asked for with a button, never on page load.
    again = await open_room(alice_context, server.url, "lobby")
    await expect(again.locator("#notify-mentions")).to_be_visible()


async def join_room(new_context: NewContext, server: LiveServer, name: str, room: str) -> Page:
    return await open_room(await sign_up(new_context, server.url, name), server.url, room)


async def test_the_pill_jumps_to_new_messages_when_scrolled_up(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_RATE_LIMITS = {"message": (1000, 1000, 10.0)}
    poster = await sync_to_async(ChatAccount)(server.url, "poster")
    for n in range(40):
        await sync_to_async(poster.say)("lobby", f"earlier {n}\nwith a second line")
    poster.close()
    alice = await join_room(new_context, server, "alice", "lobby")
    bob = await join_room(new_context, server, "bob", "lobby")
    pill = alice.locator("#new-messages")
    await expect(pill).to_be_hidden()
    await alice.locator("#scroller").evaluate("node => { node.scrollTop = 0; }")
    await send(bob, "while alice reads back")
    await expect(pill).to_be_visible()
    await pill.click()
    await expect(alice.locator(".message .text").last).to_be_in_viewport()
    await expect(pill).to_be_hidden()
    # At the bottom, new messages just follow: no pill.
    await send(bob, "followed")
    await expect(alice.locator(".message .text").last).to_have_text("followed")
    await expect(alice.locator(".message .text").last).to_be_in_viewport()
    await expect(pill).to_be_hidden()


async def test_the_counter_counts_like_the_server_and_nothing_is_cut(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join_room(new_context, server, "alice", "lobby")
    bob = await join_room(new_context, server, "bob", "lobby")
    counter = alice.locator("#counter")
    await expect(counter).to_be_hidden()
    # 2,500 emoji are 5,000 UTF-16 units but 2,500 characters: well within the limit.
    await alice.fill("#text", "🎉" * 2500)
    await expect(counter).to_be_hidden()
    await alice.fill("#text", "🎉" * 3600)
    await expect(counter).to_have_text("400 characters left")
    await alice.fill("#text", "🎉" * 4001)
    await expect(counter).to_have_text("1 characters over the limit of 4,000")
    await alice.press("#text", "Enter")
    await expect(alice.locator("#composer-error")).to_contain_text("this one is 4,001")
    # Refused, and kept whole.
    assert await alice.locator("#text").evaluate("node => [...node.value].length") == 4001
    await expect(alice.locator(".message")).to_have_count(0)
    await alice.fill("#text", "🎉" * 2500)
    await alice.press("#text", "Enter")
    for page in (alice, bob):
        text = page.locator(".message .text")
        await expect(text).to_have_count(1)
        assert await text.evaluate("node => [...node.textContent].length") == 2500


async def test_after_a_reconnect_the_page_says_at_once_that_it_is_here(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    # Heartbeats a minute apart: only the reconnect's own heartbeat can bring alice back.
    settings.CHAT_PRESENCE_HEARTBEAT = 60.0
    alice = await join_room(new_context, server, "alice", "lobby")
    bob = await join_room(new_context, server, "bob", "lobby")
    await expect(bob.locator("#presence li")).to_have_text(["alice", "bob"])

    # Alice's tab expires, as a silent tab does: the room sees only bob.
    def expire_alice() -> None:
        Presence.objects.filter(user__username="alice").delete()
        presence.update(Room.objects.get(slug="lobby"), None, "")

    await sync_to_async(expire_alice)()
    await expect(bob.locator("#presence li")).to_have_text(["bob"])

    # Then the network drops every connection: the pages reconnect by themselves.
    async def cut_every_connection() -> int:
        cut = 0
        for protocol in list(server._server.server_state.connections):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.abort()
                cut += 1
        return cut

    assert await sync_to_async(server.call)(cut_every_connection) >= 2
    await expect(alice.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=15000
    )
    await expect(bob.locator("#presence li")).to_have_text(["alice", "bob"], timeout=5000)


async def test_a_typing_notice_overtaken_by_its_message_is_not_shown(
    server: LiveServer, new_context: NewContext
) -> None:
    bob = await join_room(new_context, server, "bob", "lobby")
    # Everything the typing line shows, from now on.
    await bob.evaluate(
        """() => {
            window.typingShown = [];
            new MutationObserver(() => window.typingShown.push(
                document.getElementById("typing").textContent
            )).observe(document.getElementById("typing"), {childList: true, characterData: true,
                                                         subtree: true});
        }"""
    )
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    carol = await sync_to_async(ChatAccount)(server.url, "carol")
    # Alice's page sent "typing" before her message, but the notice arrives after it.
    await sync_to_async(alice.say)("lobby", "done typing")
    await expect(bob.locator(".message .text")).to_have_text(["done typing"])
    late = await sync_to_async(alice.api)("POST", "/api/rooms/lobby/typing/", {"after": 0})
    assert late.status_code == 204
    # Carol's notice comes after Alice's on the same channel: once it shows, Alice's
    # has been handled, and it never showed.
    fresh = await sync_to_async(carol.api)("POST", "/api/rooms/lobby/typing/", {"after": 0})
    assert fresh.status_code == 204
    await expect(bob.locator("#typing")).to_have_text("carol is typing…")
    assert await bob.evaluate("window.typingShown") == ["carol is typing…"]
    alice.close()
    carol.close()


async def test_empty_states_days_groups_and_the_favicon(
    server: LiveServer, new_context: NewContext
) -> None:
    context = await sign_up(new_context, server.url, "alice")
    rooms = await open_index(context, server.url)
    # No private room yet: the list says how to make one.
    await expect(rooms.locator("#private-hint")).to_contain_text("tick “private”")
    icon = await rooms.locator("link[rel=icon]").get_attribute("href")
    assert icon is not None
    assert (await context.request.get(f"{server.url}{icon}")).status == 200
    # An empty room invites the first message.
    alice = await open_room(context, server.url, "random")
    await expect(alice.locator("#empty-room")).to_contain_text("Say hello")
    for text in ("one", "two"):
        await send(alice, text)
        await expect(alice.locator(".message .text").last).to_have_text(text)
    await expect(alice.locator("#empty-room")).to_be_hidden()
    # One day divider; the second message of the run is grouped under the first's name.
    await expect(alice.locator("li.divider.day")).to_have_text(["Today"])
    await expect(alice.locator(".message.continued .text")).to_have_text(["two"])
    # Full date and time on hover, and for screen readers.
    time = alice.locator(".message time").first
    title = await time.get_attribute("title")
    assert title is not None
    assert str(datetime.date.today().year) in title
    await expect(time.locator(".visually-hidden")).to_have_text(title)
