"""The chat in a real browser: Debian's Chromium driven by Playwright, real server and DB."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Locator, Page, Route, expect

from chat.models import Message, Presence, Room
from chat.presence import present_users
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]
XSS = "<img src=x onerror=alert(1)>"
#: Every dialog (alert, confirm...) each page opened: an injected script would show here.
DIALOGS: dict[Page, list[str]] = {}


async def sign_up(new_context: NewContext, base_url: str, name: str) -> BrowserContext:
    """A browser context logged in as a new user, signed up through the form."""
    context = await new_context()
    page = await context.new_page()
    await page.goto(f"{base_url}/accounts/signup/")
    await page.fill("#id_username", name)
    await page.fill("#id_password1", PASSWORD)
    await page.fill("#id_password2", PASSWORD)
    await page.click("text=Create account")
    await expect(page.locator("#me")).to_have_text(name)
    # Closed once its scripts have loaded: a static file's response cut short by the
    # closing page leaves its file to the collector (a ResourceWarning, an error here).
    await page.wait_for_load_state("load")
    await page.close()
    return context


async def open_room(context: BrowserContext, base_url: str, room: str) -> Page:
    page = await context.new_page()
    dialogs = DIALOGS.setdefault(page, [])
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await page.goto(f"{base_url}/rooms/{room}/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


class Held:
    """A page's requests held back until ``released`` is set (an answer that comes late);
    ``arrived`` is set when the first of them has been sent."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()


async def hold_requests(page: Page, url_part: str, method: str) -> Held:
    """Hold ``page``'s ``method`` requests whose URL contains ``url_part``."""
    held = Held()

    async def hold(route: Route) -> None:
        if route.request.method == method:
            held.arrived.set()
            await held.released.wait()
        await route.continue_()

    await page.route(lambda url: url_part in url, hold)
    return held


def page_errors(page: Page) -> list[str]:
    """The uncaught errors of ``page`` from now on: a list that fills as they happen."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def start_reply(message: Locator) -> None:
    """Press the message's Reply button, as the mouse reaches it (it shows on hover)."""
    await message.hover()
    await message.locator("button[data-action=reply]").click()


async def join(new_context: NewContext, server: LiveServer, name: str, room: str) -> Page:
    return await open_room(await sign_up(new_context, server.url, name), server.url, room)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until a condition on the database holds (polled: it has no event to await)."""
    deadline = time.monotonic() + timeout
    while not await sync_to_async(condition)():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def unread_badge(page: Page, slug: str) -> Locator:
    """The unread badge of room ``slug`` in a room list (the index's, or a room's sidebar)."""
    return page.locator(f'li:has(> a[href="/rooms/{slug}/"]) [data-unread-for]')


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
        await expect(page.locator(".message .author")).to_have_text(["alice", "bob"])
    # Sending did not reload the page, and cleared the composer.
    await expect(bob.locator("#text")).to_have_value("")
    # The other room stayed empty, though its stream is live.
    await expect(elsewhere.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(elsewhere.locator(".message")).to_have_count(0)


async def test_text_is_rendered_safely_and_links_are_made_safely(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, XSS)
    # One at a time: two POSTs in flight may commit (and take ids) in either order.
    await expect(alice.locator(".message .text")).to_have_count(1)
    await send(alice, "see https://example.com/a?b=1&c=<2> and javascript:alert(1)")
    for page in (alice, bob):
        texts = page.locator(".message .text")
        await expect(texts).to_have_count(2, timeout=2000)
        await expect(texts.first).to_have_text(XSS)
        await expect(page.locator(".message img")).to_have_count(0)
        links = page.locator(".message .text a")
        await expect(links).to_have_count(1)
        await expect(links).to_have_attribute("href", "https://example.com/a?b=1&c=")
        await expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    # Rendered from the history on a fresh load too, and still inert.
    again = await open_room(bob.context, server.url, "lobby")
    await expect(again.locator(".message .text").first).to_have_text(XSS)
    await expect(again.locator(".message img")).to_have_count(0)
    for page in (alice, bob, again):
        assert DIALOGS[page] == []


async def test_enter_sends_shift_enter_breaks_the_line_and_errors_are_visible(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_RATE_LIMITS = {"message": (2, 30, 10.0)}
    alice = await join(new_context, server, "alice", "lobby")
    await alice.fill("#text", "first line")
    await alice.press("#text", "Shift+Enter")
    await alice.type("#text", "second line")
    await alice.press("#text", "Enter")
    await expect(alice.locator(".message .text")).to_have_text(["first line\nsecond line"])
    await send(alice, "   ")
    await expect(alice.locator("#composer-error")).to_have_text("A message cannot be empty.")
    await send(alice, "two")
    await expect(alice.locator(".message")).to_have_count(2)
    await send(alice, "three is too many")
    await expect(alice.locator("#composer-error")).to_contain_text("Too many messages")
    # The refused text stays in the composer, to be sent later.
    await expect(alice.locator("#text")).to_have_value("three is too many")
    await expect(alice.locator(".message")).to_have_count(2)


async def test_another_room_and_a_private_room_stay_closed(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    owner_page = await alice_context.new_page()
    await owner_page.goto(f"{server.url}/")
    await owner_page.fill("#room-name", "Plans")
    await owner_page.check("input[name=private]")
    await owner_page.click("#new-room button")
    await expect(owner_page.locator("#connection")).to_have_attribute("data-state", "live")
    # A private room's address ends with random characters: not guessable from its name.
    assert re.fullmatch(rf"{server.url}/rooms/plans-[a-z2-9]{{8}}/", owner_page.url)
    slug = owner_page.url.rstrip("/").rsplit("/", 1)[1]
    await send(owner_page, "the secret plan")
    await expect(owner_page.locator(".message")).to_have_count(1)

    # To anyone else it looks like a room that does not exist.
    mallory = await sign_up(new_context, server.url, "mallory")
    page = await mallory.new_page()
    response = await page.goto(f"{server.url}/rooms/{slug}/")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("body")).not_to_contain_text("the secret plan")
    stream = await mallory.request.get(f"{server.url}/rooms/{slug}/events/")
    assert stream.status == 404
    history = await mallory.request.get(f"{server.url}/api/rooms/{slug}/messages/")
    assert history.status == 404
    # Invited by the owner, the same user gets in.
    await owner_page.fill("#invite-username", "mallory")
    await owner_page.click(".invite button")
    await expect(owner_page.locator(".notice")).to_contain_text("mallory may now enter")
    invited = await open_room(mallory, server.url, slug)
    await expect(invited.locator(".message .text")).to_have_text(["the secret plan"])


async def test_edits_and_deletes_reach_the_other_window_live(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "helo")
    await expect(alice.locator(".message")).to_have_count(1)  # ids in the order sent
    await send(alice, "delete me")
    await expect(bob.locator(".message")).to_have_count(2)
    # Bob may neither edit nor delete Alice's messages: no such buttons for him (he may
    # reply and react; Delete is there for the room's owner only, should he become it:
    # see test_chat_settings_browser).
    await expect(bob.locator(".message .action[data-action=edit]")).to_have_count(0)
    await expect(bob.locator(".message .action[data-action=delete]:visible")).to_have_count(0)
    await expect(bob.locator(".message .action[data-action=reply]")).to_have_count(2)
    first = alice.locator(".message").first
    await first.locator("button[data-action=edit]").click()
    await alice.fill(".editor", "hello")
    await alice.press(".editor", "Enter")
    await expect(bob.locator(".message .text").first).to_have_text("hello", timeout=2000)
    await expect(bob.locator(".message .edited")).to_have_count(1)
    second = alice.locator(".message").nth(1)
    await second.locator("button[data-action=delete]").click()
    # Deleting asks first; keeping it changes nothing.
    await second.locator("button[data-action=cancel-delete]").click()
    await expect(second.locator("button[data-action=delete]")).to_be_visible()
    await second.locator("button[data-action=delete]").click()
    await second.locator("button[data-action=confirm-delete]").click()
    await expect(bob.locator(".message .text")).to_have_text(["hello"], timeout=2000)
    await expect(alice.locator(".message .text")).to_have_text(["hello"])


async def test_a_save_answered_late_leaves_the_focus_where_the_user_moved_it(
    server: LiveServer, new_context: NewContext
) -> None:
    """An edit's answer that arrives after the user has asked to delete another message
    does not pull the focus back to the edited one (which would close the question)."""
    alice = await join(new_context, server, "alice", "lobby")
    await send(alice, "helo")
    await expect(alice.locator(".message")).to_have_count(1)
    await send(alice, "delete me")
    await expect(alice.locator(".message")).to_have_count(2)
    save = await hold_requests(alice, "/messages/", "PATCH")
    first, second = alice.locator(".message").first, alice.locator(".message").nth(1)
    await first.locator("button[data-action=edit]").click()
    await alice.fill(".editor", "hello")
    await alice.press(".editor", "Enter")
    await asyncio.wait_for(save.arrived.wait(), 10)
    await second.locator("button[data-action=delete]").click()
    keep = second.locator("button[data-action=cancel-delete]")
    await expect(keep).to_be_focused()
    save.released.set()
    await expect(first.locator(".text")).to_have_text("hello")
    await expect(keep).to_be_focused()
    await keep.click()
    await expect(second.locator("button[data-action=delete]")).to_be_visible()
    await expect(alice.locator(".message .text")).to_have_text(["hello", "delete me"])


async def test_who_is_here_follows_tabs_opening_and_closing(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    await expect(alice.locator("#presence li")).to_have_text(["alice"])
    bob_context = await sign_up(new_context, server.url, "bob")
    bob_first = await open_room(bob_context, server.url, "lobby")
    await expect(alice.locator("#presence li")).to_have_text(["alice", "bob"])
    await expect(bob_first.locator("#presence li")).to_have_text(["alice", "bob"])
    # A second tab of Bob's: Bob counts once.
    bob_second = await open_room(bob_context, server.url, "lobby")
    await expect(bob_second.locator("#presence li")).to_have_text(["alice", "bob"])
    await bob_first.close(run_before_unload=True)
    # Once the server has handled that tab's leave beacon, Bob is still present.
    await until(lambda: Presence.objects.filter(user__username="bob").count() == 1)
    assert await sync_to_async(present_users)(
        await sync_to_async(Room.objects.get)(slug="lobby")
    ) == ["alice", "bob"]
    await expect(alice.locator("#presence li")).to_have_text(["alice", "bob"])
    # His last tab closes: he leaves at once (the pagehide beacon), not after expiry.
    await bob_second.close(run_before_unload=True)
    await expect(alice.locator("#presence li")).to_have_text(["alice"], timeout=5000)
    await expect(alice.locator("#presence-count")).to_have_text("1")


async def test_typing_shows_to_others_and_clears_when_the_message_arrives(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await alice.type("#text", "hel")
    await expect(bob.locator("#typing")).to_have_text("alice is typing…", timeout=2000)
    await expect(alice.locator("#typing")).to_have_text("")
    await alice.type("#text", "lo")
    await alice.press("#text", "Enter")
    await expect(bob.locator(".message .text")).to_have_text(["hello"])
    await expect(bob.locator("#typing")).to_have_text("")


async def test_older_messages_load_when_scrolled_to(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_RATE_LIMITS = {"message": (1000, 1000, 10.0)}
    poster = await sync_to_async(ChatAccount)(server.url, "poster")
    for n in range(70):
        await sync_to_async(poster.say)("lobby", f"message {n}")
    poster.close()
    alice = await join(new_context, server, "alice", "lobby")
    texts = alice.locator(".message .text")
    await expect(texts).to_have_count(50)
    await expect(texts.first).to_have_text("message 20")
    await alice.locator("#scroller").evaluate("node => { node.scrollTop = 0; }")
    await expect(texts).to_have_count(70)
    await expect(texts.first).to_have_text("message 0")
    await expect(alice.locator("#load-older")).to_be_hidden()


async def test_a_message_committed_between_render_and_stream_start_is_not_lost(
    server: LiveServer, new_context: NewContext
) -> None:
    context = await sign_up(new_context, server.url, "alice")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    page = await context.new_page()
    posted: list[dict[str, Any]] = []

    async def post_before_the_stream_starts(route: Any) -> None:
        if not posted:
            posted.append(await sync_to_async(bob.say)("lobby", "sent while the page loaded"))
        await route.continue_()

    await page.route("**/rooms/lobby/events/**", post_before_the_stream_starts)
    await page.goto(f"{server.url}/rooms/lobby/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator(".message .text")).to_have_text(["sent while the page loaded"])
    assert len(posted) == 1
    bob.close()


async def test_a_position_the_stream_cannot_resume_shows_reset_and_reloads(
    server: LiveServer, new_context: NewContext
) -> None:
    context = await sign_up(new_context, server.url, "alice")
    page = await context.new_page()
    rewritten: list[str] = []

    async def spoil_the_first_position(route: Any) -> None:
        if rewritten:
            await route.continue_()
            return
        url = route.request.url.split("?")[0] + "?last_event_id=00000000:1.1.1"
        rewritten.append(url)
        await route.continue_(url=url)

    await page.route("**/rooms/lobby/events/**", spoil_the_first_position)
    await page.goto(f"{server.url}/rooms/lobby/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "reset")
    # The page reloads its history and goes live from a fresh position.
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert len(rewritten) == 1


async def test_a_second_enter_while_the_first_is_on_its_way_posts_once(
    server: LiveServer, new_context: NewContext
) -> None:
    """On a slow connection people press Enter again, or click Send: one message."""
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    posting = await hold_requests(alice, "/messages/", "POST")
    await alice.fill("#text", "only once")
    await alice.press("#text", "Enter")
    await asyncio.wait_for(posting.arrived.wait(), 10)
    await alice.press("#text", "Enter")
    await alice.locator("#send").click()
    posting.released.set()
    await expect(alice.locator("#text")).to_have_value("")
    await send(alice, "and then this")
    for page in (alice, bob):
        await expect(page.locator(".message .text")).to_have_text(["only once", "and then this"])

    def posted() -> list[str]:
        return sorted(Message.objects.values_list("text", flat=True))

    assert await sync_to_async(posted)() == ["and then this", "only once"]
