"""Search in Chromium: from the search box to a result, which opens the room on that
message with the history around it; newer pages as the reader scrolls down, and live
messages shown once the newest is reached. And axe-core on what the new features draw:
the search page, a room with reactions, an open thread and the @-name list."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from chat.models import Message, Room
from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_accessibility import violations
from tests.e2e.test_chat_browser import join, send, start_reply
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


def fill_lobby() -> None:
    lobby = Room.objects.get(slug="lobby")
    Message.objects.bulk_create(
        [Message(room=lobby, author_name="bob", text=f"filler {n}") for n in range(60)]
    )
    Message.objects.create(room=lobby, author_name="bob", text="the zeppelin lands at noon")
    Message.objects.bulk_create(
        [Message(room=lobby, author_name="bob", text=f"later {n}") for n in range(120)]
    )


async def test_a_result_opens_its_room_around_it(
    server: LiveServer, new_context: NewContext
) -> None:
    await sync_to_async(fill_lobby)()
    page = await join(new_context, server, "alice", "random")
    await page.locator("#search-box").fill("Zeppelin")
    await page.locator("#search-box").press("Enter")
    await expect(page).to_have_title("Zeppelin · Search · pgsse chat")
    results = page.locator(".search-result")
    await expect(results).to_have_count(1)
    await expect(results.locator("mark")).to_have_text("zeppelin")
    assert await violations(page) == [], "search results"
    await results.locator("a").click()
    # The room, on that message: focused, marked, with the history around it.
    target = page.locator(".message.target")
    await expect(target.locator(".text")).to_have_text("the zeppelin lands at noon")
    await expect(target).to_be_focused()
    await expect(page.locator(".message .text").first).to_have_text("filler 35")
    await expect(page.locator("#load-newer")).to_be_visible()
    # A live message waits below the older page; the pill says something is new.
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    await sync_to_async(bob.say)("lobby", "live while alice reads the past")
    await expect(page.locator("#new-messages")).to_be_visible()
    await expect(page.locator(".message .text", has_text="live while")).to_have_count(0)
    # Scrolling down (or the button) loads newer pages until the newest; then the live
    # one shows, once.
    newer = page.locator("#load-newer")
    for _ in range(10):
        if await newer.is_hidden():
            break
        shown = await page.locator(".message").count()
        try:
            await newer.click(timeout=5_000)
        except PlaywrightTimeoutError:
            # The page scrolled to the end of what it shows and loaded the next page by
            # itself; the button is hidden while it loads (for good after the newest).
            continue
        await expect(page.locator(".message")).not_to_have_count(shown)
    await expect(newer).to_be_hidden()
    await expect(page.locator(".message .text").last).to_have_text(
        "live while alice reads the past"
    )
    await expect(page.locator(".message .text", has_text="later 119")).to_have_count(1)
    ids = await page.locator(".message").evaluate_all("(items) => items.map((i) => i.dataset.id)")
    assert len(ids) == len(set(ids))
    bob.close()


async def test_scrolling_down_alone_loads_every_newer_page(
    server: LiveServer, new_context: NewContext
) -> None:
    await sync_to_async(fill_lobby)()
    page = await join(new_context, server, "alice", "random")
    target = await sync_to_async(
        lambda: Message.objects.get(text="the zeppelin lands at noon").pk
    )()
    await page.goto(f"{server.url}/rooms/lobby/?message={target}")
    await expect(page.locator(".message.target")).to_be_focused()
    newer = page.locator("#load-newer")
    await expect(newer).to_be_visible()
    # Only the wheel, at the end of what is shown each time, as a reader scrolls.
    for _ in range(20):
        if await newer.is_hidden():
            break
        shown = await page.locator(".message").count()
        await page.locator("#scroller").hover()
        await page.mouse.wheel(0, 100_000)
        # A wheel that came while a page loaded changes nothing: the next one does.
        with contextlib.suppress(AssertionError):
            await expect(page.locator(".message")).not_to_have_count(shown, timeout=3_000)
    await expect(newer).to_be_hidden()
    await expect(page.locator(".message .text").last).to_have_text("later 119")
    ids = await page.locator(".message").evaluate_all("(items) => items.map((i) => i.dataset.id)")
    # From the page's first ("filler 35") to the newest, each once.
    await expect(page.locator(".message .text").first).to_have_text("filler 35")
    assert len(ids) == len(set(ids)) == 25 + 1 + 120


async def test_new_parts_pass_axe(server: LiveServer, new_context: NewContext) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "a question for @bob")
    first = bob.locator(".message").first
    await expect(first).to_have_count(1)
    await first.hover()
    await first.locator("button[data-action=react]").click()
    assert await violations(bob) == [], "picker open"
    await first.locator(".picker button").first.click()
    await start_reply(first)
    assert await violations(bob) == [], "replying"
    await send(bob, "an answer")
    await expect(bob.locator(".message .quote")).to_have_count(1)
    await bob.locator(".replies").click()
    await expect(bob.locator("#thread-replies .text")).to_have_text(["an answer"])
    await bob.locator("#thread-text").press_sequentially("@al")
    await expect(bob.locator("[role=listbox] [role=option]")).to_have_text(["@alice"])
    assert await violations(bob) == [], "thread and the @-name list"
    search = await (bob.context).new_page()
    await search.goto(f"{server.url}/search/?q=nothing+matches+this")
    await expect(search.locator("#search-empty")).to_be_visible()
    assert await violations(search) == [], "no results"
