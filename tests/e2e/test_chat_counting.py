"""Unread counts counted by the page (unread.js, chat.js) in Chromium: the counting rules
one by one on a blank page, then pages that follow some rooms live and refresh the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from playwright.async_api import BrowserContext, Page, expect

from chat.models import Membership, Message, Room
from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import sign_up, unread_badge
from tests.servers import REPOSITORY, LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]
UNREAD_JS = REPOSITORY / "demo/chat/static/chat/unread.js"


async def counting_page(new_context: NewContext) -> Page:
    page = await (await new_context()).new_page()
    await page.set_content("<!doctype html><title>counting</title>")
    await page.add_script_tag(path=str(UNREAD_JS))
    return page


async def run(page: Page, script: str) -> Any:
    """``script`` is the body of a function given ``make(rooms)`` (counts for user "me")
    and ``state(counts, roomId)`` (``[unread, mentions]``)."""
    return await page.evaluate(
        f"""() => {{
            const make = (rooms) => new chatUnread.UnreadCounts(rooms, "me");
            const state = (counts, id) => [counts.get(id).unread, counts.get(id).mentions];
            {script}
        }}"""
    )


def room(**fields: Any) -> dict[str, Any]:
    return {
        "room_id": 1,
        "room": "lobby",
        "read": 10,
        "unread": 0,
        "mentions": 0,
        "ids": [],
        "mentioning": [],
        **fields,
    }


async def test_messages_count_once_and_never_ones_own_or_read_ones(
    new_context: NewContext,
) -> None:
    page = await counting_page(new_context)
    start = room(unread=2, mentions=1, ids=[11, 12], mentioning=[12])
    assert await run(
        page,
        f"""
        const counts = make([{start}]);
        const seen = [];
        const post = (id, user, mentions) =>
            counts.created({{id, user, room_id: 1, text: ""}}, mentions);
        seen.push(post(12, "bob", true));   // replayed: counted with the page already
        seen.push(post(13, "bob", false));
        seen.push(post(14, "me", false));   // one's own
        seen.push(post(9, "bob", false));   // read already
        seen.push(post(15, "bob", true));
        seen.push(counts.created({{id: 16, user: "bob", room_id: 2, text: ""}}, false));
        return [seen, state(counts, 1), counts.total()];
        """.replace("{start}", str(start).replace("'", '"')),
    ) == [[False, True, False, False, True, False], [4, 2], 4]


async def test_deletions_edits_and_read_positions_remove_exactly_what_they_cover(
    new_context: NewContext,
) -> None:
    page = await counting_page(new_context)
    start = room(unread=3, mentions=1, ids=[11, 12, 13], mentioning=[12])
    result = await run(
        page,
        """
        const counts = make([START]);
        const states = [];
        counts.deleted({id: 12, room_id: 1, user: "bob"});
        states.push(state(counts, 1));
        // Deleted, then replayed: never back.
        counts.created({id: 12, user: "bob", room_id: 1, text: "@me"}, true);
        states.push(state(counts, 1));
        // An edit adds a mention, another takes it away.
        counts.updated({id: 13, user: "bob", room_id: 1, text: "@me"}, true);
        states.push(state(counts, 1));
        counts.updated({id: 13, user: "bob", room_id: 1, text: "no"}, false);
        states.push(state(counts, 1));
        // An edit of a message whose creation the page never saw: counted now.
        counts.updated({id: 20, user: "bob", room_id: 1, text: "@me"}, true);
        states.push(state(counts, 1));
        // Read up to 13 on another page: 11 and 13 go, 20 stays.
        const read = counts.readUpTo(1, 13);
        states.push(state(counts, 1));
        counts.removed(1);
        return [states, read, counts.get(1) === undefined, counts.total()];
        """.replace("START", str(start).replace("'", '"')),
    )
    assert result == [[[2, 0], [2, 0], [2, 1], [2, 0], [3, 1], [1, 1]], True, True, 0]


async def test_messages_known_by_number_only_and_a_refresh(new_context: NewContext) -> None:
    """A room with more unread messages than the page was given ids of: the rest is a
    number; a read position among them asks the server; its answer merges with what
    arrived meanwhile."""
    page = await counting_page(new_context)
    start = room(unread=5, mentions=2, ids=[20, 21], mentioning=[21])
    result = await run(
        page,
        """
        const counts = make([START]);
        const states = [state(counts, 1)];
        // An older unread message deleted: the number goes down (its mention is unknown).
        counts.deleted({id: 15, room_id: 1, user: "bob"});
        states.push(state(counts, 1));
        // Something new, then a read position among the older ones: ask again.
        counts.created({id: 30, user: "bob", room_id: 1, text: ""}, false);
        const read = counts.readUpTo(1, 12);
        states.push(state(counts, 1));
        // The server's answer, taken before message 30 and 31 committed.
        counts.created({id: 31, user: "bob", room_id: 1, text: ""}, false);
        counts.deleted({id: 21, room_id: 1, user: "bob"});
        counts.refreshed({room_id: 1, room: "lobby", read: 12, unread: 3, mentions: 1,
                          ids: [14, 20, 21], mentioning: [21]});
        states.push(state(counts, 1));
        // Read past everything the page was told of by number: back to ids only.
        counts.readUpTo(1, 20);
        states.push(state(counts, 1));
        return [states, read];
        """.replace("START", str(start).replace("'", '"')),
    )
    assert result == [[[5, 2], [4, 2], [5, 2], [4, 0], [2, 0]], "stale"]


# -- pages ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_rooms_past_the_live_ones_are_refreshed_while_the_page_is_visible(
    server: LiveServer, new_context: NewContext, settings: Any
) -> None:
    settings.CHAT_LIVE_ROOMS = 1
    settings.CHAT_UNREAD_REFRESH = 0.5
    context = await sign_up(new_context, server.url, "bob")
    alice = await sync_to_async(ChatAccount)(server.url, "alice")

    def bob_joins_both() -> None:
        bob = User.objects.get(username="bob")
        for slug in ("lobby", "random"):
            Membership.objects.create(room=Room.objects.get(slug=slug), user=bob)
        # lobby is the most active: the page follows it live.
        Message.objects.create(
            room=Room.objects.get(slug="lobby"), author=bob, author_name="bob", text="hi"
        )

    await sync_to_async(bob_joins_both)()
    page = await context.new_page()
    await page.goto(f"{server.url}/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    config = await page.evaluate("JSON.parse(document.getElementById('chat-config').textContent)")
    lobby = await sync_to_async(lambda: Room.objects.get(slug="lobby").pk)()
    assert config["follow"] == [lobby]
    await sync_to_async(alice.say)("lobby", "live")
    await sync_to_async(alice.say)("random", "refreshed, @bob")
    await expect(unread_badge(page, "lobby")).to_contain_text("1 unread")
    await expect(unread_badge(page, "random")).to_contain_text("1 unread, 1 mentioning you")
    await sync_to_async(alice.close)()
