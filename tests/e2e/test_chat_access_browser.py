"""Access taken away, as the pages show it, in Chromium: a page whose stream is refused
for good says so, stops, and makes no more requests; the others see the user leave
"Here now" at once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, Request, expect

from tests.e2e.test_chat_browser import open_room, sign_up
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]

#: Seconds between the pages' heartbeats in these tests: a page that kept beating after
#: its stream ended would show within the observation window below.
HEARTBEAT = 0.5
#: How long a page is watched for requests it should no longer make: six heartbeats, and
#: longer than pgsse.js's first waits (0.5-1 s, then 1-2 s) before a retry.
QUIET_MS = 3000


async def private_room(
    new_context: NewContext, server: LiveServer, owner: str, member: str
) -> tuple[BrowserContext, BrowserContext, str]:
    """``owner`` creates a private room on the room list and invites ``member``."""
    member_context = await sign_up(new_context, server.url, member)
    owner_context = await sign_up(new_context, server.url, owner)
    page = await owner_context.new_page()
    await page.goto(f"{server.url}/")
    await page.fill("#room-name", "Plans")
    await page.check("input[name=private]")
    await page.click("#new-room button")
    await page.fill("#invite-username", member)
    await page.click(".invite button")
    await expect(page.locator(".notices")).to_contain_text(f"{member} may now enter")
    slug = page.url.rstrip("/").rsplit("/", 1)[1]
    # Closed once loaded: Chromium may hang closing a page in the middle of a navigation.
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await page.close()
    return owner_context, member_context, slug


def record_requests(page: Page) -> list[str]:
    """Every request ``page`` makes from now on (fetches, beacons, EventSource), by URL."""
    seen: list[str] = []

    def record(request: Request) -> None:
        seen.append(request.url)

    page.on("request", record)
    return seen


async def makes_no_more_requests(page: Page, seen: list[str]) -> None:
    before = list(seen)
    await page.wait_for_timeout(QUIET_MS)  # an absence is only seen over time
    assert seen == before


async def test_leaving_in_another_tab_ends_the_first_tab_which_says_so_and_stops(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_PRESENCE_HEARTBEAT = HEARTBEAT
    alice_context, bob_context, slug = await private_room(new_context, server, "alice", "bob")
    alice = await open_room(alice_context, server.url, slug)
    bob = await open_room(bob_context, server.url, slug)
    await expect(alice.locator("#presence li")).to_have_text(["alice", "bob"])
    seen = record_requests(bob)

    other_tab = await open_room(bob_context, server.url, slug)
    await other_tab.click("text=Leave")
    await expect(other_tab.locator(".notices")).to_contain_text("You left Plans.")

    # Alice sees Bob leave at once: not when his first tab's heartbeat would have
    # expired (CHAT_PRESENCE_TIMEOUT, 20 s), and not merely his other tab (whose leave
    # beacon keeps him present). The bound leaves a loaded machine room, and is still
    # half that expiry (2 s were once exceeded under load).
    await expect(alice.locator("#presence li")).to_have_text(["alice"], timeout=10_000)
    # Bob's first tab: its stream ended, its reconnect was refused (404, as for any
    # private room he may not see), and the page says so.
    await expect(bob.locator("#connection")).to_have_attribute("data-state", "closed")
    await expect(bob.locator("#connection")).to_have_text("no access")
    notice = bob.locator("#stream-notice")
    await expect(notice).to_contain_text("You no longer have access to Plans")
    await expect(notice.locator("a")).to_have_attribute("href", "/")
    await expect(bob.locator("#text")).to_be_disabled()
    await expect(bob.locator("#presence li")).to_have_count(0)

    await makes_no_more_requests(bob, seen)
    # Of the stream, after the page's own: the browser's reconnect, and pgsse.js's probe
    # that learnt why it was refused. No retry storm.
    stream = f"{server.url}/rooms/{slug}/events/"
    assert len([url for url in seen if url.startswith(stream)]) == 2


async def test_the_owner_removes_a_member_from_the_room_page(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context, bob_context, slug = await private_room(new_context, server, "alice", "bob")
    bob = await open_room(bob_context, server.url, slug)
    alice = await open_room(alice_context, server.url, slug)
    await expect(alice.locator("#members .member-name")).to_have_text(["alice", "bob"])
    await expect(alice.locator("#members .remove")).to_have_count(1)
    await expect(bob.locator("#members .member-name")).to_have_text(["alice", "bob"])
    await expect(bob.locator("#members .remove")).to_have_count(0)  # not the owner

    await alice.get_by_role("button", name="Remove bob from Plans").click()
    await expect(alice.locator(".notices")).to_contain_text("bob was removed from Plans.")
    await expect(alice.locator("#members .member-name")).to_have_text(["alice"])
    await expect(bob.locator("#connection")).to_have_attribute("data-state", "closed")
    await expect(bob.locator("#stream-notice")).to_contain_text("no longer have access")


async def test_logging_out_in_one_tab_ends_the_other_tabs(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_PRESENCE_HEARTBEAT = HEARTBEAT
    context = await sign_up(new_context, server.url, "bob")
    room = await open_room(context, server.url, "lobby")
    rooms = await context.new_page()
    await rooms.goto(f"{server.url}/")
    await expect(rooms.locator("#connection")).to_have_attribute("data-state", "live")
    seen = record_requests(room)

    other_tab = await context.new_page()
    await other_tab.goto(f"{server.url}/")
    await other_tab.click("text=Log out")
    await expect(other_tab.locator("#id_username")).to_be_visible()

    for page in (room, rooms):
        await expect(page.locator("#connection")).to_have_attribute("data-state", "denied")
        await expect(page.locator("#connection")).to_have_text("logged out")
        notice = page.locator("#stream-notice")
        await expect(notice).to_contain_text("You are logged out")
        await expect(notice.get_by_role("link", name="Log in again")).to_be_visible()
    await expect(room.locator("#text")).to_be_disabled()
    await makes_no_more_requests(room, seen)
