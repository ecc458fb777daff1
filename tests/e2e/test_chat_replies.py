"""Replies and threads in Chromium, two users: reply from a message's Reply button, the
reply shows what it answers (and follows its edits and deletion), the first message's
"N replies" counts live on both pages, the thread panel opens by mouse and by keyboard,
replies live, and answering there; a reply to your message is counted as a mention; a
cancelled edit or deletion leaves what the message showed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, expect

from tests.chat_accounts import ChatAccount
from tests.e2e.test_chat_browser import (
    join,
    open_room,
    page_errors,
    send,
    sign_up,
    start_reply,
    unread_badge,
)
from tests.servers import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.asyncio(loop_scope="session"),
]

NewContext = Callable[..., Awaitable[BrowserContext]]


async def test_replying_and_the_thread_live_on_two_pages(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "Who reviews the release notes?")
    question = bob.locator(".message").first
    await expect(question.locator(".text")).to_have_text("Who reviews the release notes?")
    # Bob replies with the mouse: the bar says to what, the reply shows it.
    await start_reply(question)
    await expect(bob.locator("#replying")).to_contain_text("alice: Who reviews the release notes?")
    await expect(bob.locator("#text")).to_be_focused()
    await send(bob, "I do")
    await expect(bob.locator("#replying")).to_be_hidden()
    for page in (alice, bob):
        reply = page.locator(".message").nth(1)
        quoted = reply.locator(".quote")
        await expect(quoted).to_contain_text("alice: Who reviews the release notes?")
        replies = page.locator(".message").first.locator(".replies")
        await expect(replies).to_contain_text("1 reply")
    # The answered message edited: the quotes follow, live.
    await alice.locator(".message").first.locator(".text").click()
    await alice.locator(".message").first.locator("button[data-action=edit]").click()
    await alice.locator(".editor").fill("Who reviews the notes?")
    await alice.locator(".editor").press("Enter")
    await expect(bob.locator(".message").nth(1).locator(".quote")).to_contain_text(
        "alice: Who reviews the notes?"
    )
    # Alice opens the thread: its first message, the reply; she answers there.
    await alice.locator(".message").first.locator(".replies").click()
    panel = alice.locator("#thread-panel")
    await expect(panel).to_be_visible()
    await expect(panel.locator("#thread-root .text")).to_have_text("Who reviews the notes?")
    await expect(panel.locator("#thread-replies .text")).to_have_text(["I do"])
    await expect(alice.locator("#thread-text")).to_be_focused()
    await alice.locator("#thread-text").fill("thanks @bob!")
    await alice.locator("#thread-text").press("Enter")
    await expect(panel.locator("#thread-replies .text")).to_have_text(["I do", "thanks @bob!"])
    for page in (alice, bob):
        replies = page.locator(".message").first.locator(".replies")
        await expect(replies).to_contain_text("2 replies")
        await expect(page.locator(".message .text").last).to_have_text("thanks @bob!")
    # Bob's reply arrives live in Alice's open thread; deleting it leaves it, and counts.
    await send(bob, "another answer, not in the thread")
    await bob.locator(".message").nth(1).locator(".text").click()
    await bob.locator(".message").nth(1).locator("button[data-action=delete]").click()
    await bob.locator("button[data-action=confirm-delete]").click()
    await expect(panel.locator("#thread-replies .text")).to_have_text(["thanks @bob!"])
    await expect(alice.locator(".message").first.locator(".replies")).to_contain_text("1 reply")
    # Escape closes the panel and gives the focus back to what opened it.
    await alice.locator("#thread-text").press("Escape")
    await expect(panel).to_be_hidden()
    await expect(alice.locator(".message").first.locator(".replies")).to_be_focused()
    # The first message deleted: the reply says so.
    await alice.locator(".message").first.locator(".text").click()
    await alice.locator(".message").first.locator("button[data-action=delete]").click()
    await alice.locator("button[data-action=confirm-delete]").click()
    await expect(bob.locator(".message .quote").first).to_contain_text("a deleted message")


async def test_a_thread_by_keyboard_and_a_reply_counted_as_a_mention(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    alice = await open_room(alice_context, server.url, "lobby")
    await send(alice, "a question")
    await expect(alice.locator(".message")).to_have_count(1)
    await expect(alice.locator("#text")).to_have_value("")  # the POST's answer came too
    # Keyboard only: from the composer, ↑ edits; Escape leaves the editor on the message;
    # Tab reaches Reply, Enter starts a reply.
    await alice.locator("#text").press("ArrowUp")
    await expect(alice.locator(".editor")).to_be_focused()
    await alice.keyboard.press("Escape")
    await expect(alice.locator(".message").first).to_be_focused()
    await alice.keyboard.press("Tab")
    await expect(alice.locator("button[data-action=reply]")).to_be_focused()
    await alice.keyboard.press("Enter")
    await expect(alice.locator("#text")).to_be_focused()
    await alice.keyboard.type("answering myself")
    await alice.keyboard.press("Enter")
    await expect(alice.locator(".message")).to_have_count(2)
    # The replies' count under the first message opens the thread by keyboard.
    first = alice.locator(".message").first
    await first.focus()
    await expect(first.locator(".replies")).to_contain_text("1 reply")
    await alice.keyboard.press("Tab")
    while not await first.locator(".replies").evaluate("(node) => node === document.activeElement"):
        await alice.keyboard.press("Tab")
    await alice.keyboard.press("Enter")
    await expect(alice.locator("#thread-replies .text")).to_have_text(["answering myself"])
    await alice.keyboard.press("Escape")
    # Bob answers Alice's question while her room list is open: counted as a mention.
    await alice.close()
    rooms = await alice_context.new_page()
    await rooms.goto(f"{server.url}/")
    await expect(rooms.locator("#connection")).to_have_attribute("data-state", "live")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    question = (await sync_to_async(bob.api)("GET", "/api/rooms/lobby/messages/")).json()
    first_id = question["messages"][0]["id"]
    await sync_to_async(bob.api)(
        "POST", "/api/rooms/lobby/messages/", {"text": "here is an answer", "reply_to": first_id}
    )
    badge = unread_badge(rooms, "lobby")
    await expect(badge).to_contain_text("1 unread, 1 mentioning you")
    await expect(badge).to_have_class("unread mentioned")
    bob.close()


async def test_a_cancelled_edit_or_deletion_leaves_the_message_as_it_was(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    question = await sync_to_async(bob.say)("lobby", "a question")
    await sync_to_async(bob.api)(
        "POST", "/api/rooms/lobby/messages/", {"text": "and more", "reply_to": question["id"]}
    )
    first = alice.locator(".message").first
    await expect(first.locator(".replies")).to_contain_text("1 reply")
    await first.locator(".text").click()
    await first.locator("button[data-action=reply]").click()
    await send(alice, "my answer")
    await expect(alice.locator(".message")).to_have_count(3)
    await expect(alice.locator("#text")).to_have_value("")
    mine = alice.locator(".message").nth(2)
    await mine.locator(".text").click()  # her own message's actions show on hover and focus
    mine_id = await mine.get_attribute("data-id")
    await sync_to_async(bob.api)(
        "POST", f"/api/rooms/lobby/messages/{mine_id}/reactions/", {"emoji": "👍"}
    )
    await expect(mine.locator(".reactions button")).to_have_count(1)
    await expect(first.locator(".replies")).to_contain_text("2 replies")
    await expect(mine.locator(".quote")).to_contain_text("a question")

    async def unchanged() -> None:
        """What the other scripts drew is still there: the replies' count under the first
        message, and her reply's quote, reactions and text."""
        await expect(first.locator(".replies")).to_contain_text("2 replies")
        await expect(mine.locator(".quote")).to_contain_text("a question")
        await expect(mine.locator(".reactions button")).to_have_count(1)
        await expect(mine.locator(".text")).to_have_text("my answer")

    # Edit, then Escape; edit, then Cancel; Delete, then Keep.
    await alice.locator("#text").press("ArrowUp")
    await expect(mine.locator(".editor")).to_be_focused()
    await alice.keyboard.press("Escape")
    await expect(mine.locator(".editor")).to_have_count(0)
    await unchanged()
    await mine.locator(".text").click()
    await mine.locator("button[data-action=edit]").click()
    await mine.locator("button[data-action=cancel]").click()
    await expect(mine.locator(".editor")).to_have_count(0)
    await unchanged()
    await mine.locator(".text").click()
    await mine.locator("button[data-action=delete]").click()
    await mine.locator("button[data-action=cancel-delete]").click()
    await expect(mine.locator("button[data-action=confirm-delete]")).to_have_count(0)
    await unchanged()
    await expect(mine.locator("button[data-action=edit]")).to_have_count(1)
    await expect(mine.locator("button[data-action=delete]")).to_have_count(1)
    await sync_to_async(bob.close)()


async def test_a_first_reply_while_its_message_is_edited_counts_once_the_editor_closes(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    errors = page_errors(alice)
    await send(alice, "edit me later")
    await expect(alice.locator(".message.mine")).to_have_count(1)
    await expect(alice.locator("#text")).to_have_value("")
    await alice.press("#text", "ArrowUp")  # the editor, on her last message
    await expect(alice.locator(".editor")).to_be_focused()
    root = bob.locator(".message").first
    await start_reply(root)
    await send(bob, "a first reply")
    first = alice.locator(".message").first
    await expect(first.locator(".replies")).to_contain_text("1 reply")
    await expect(alice.locator(".editor")).to_be_focused()
    await alice.locator(".editor").press("Escape")
    await expect(first.locator(".text")).to_have_text("edit me later")
    await expect(first.locator(".replies")).to_contain_text("1 reply")
    parts = await first.evaluate("(item) => [...item.children].map((part) => part.classList[0])")
    assert parts[-2:] == ["text", "replies"]
    assert errors == []


async def test_a_reply_in_the_thread_while_offline_says_so_and_is_kept(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    errors = page_errors(alice)
    await send(bob, "thoughts?")
    root = alice.locator(".message").first
    await start_reply(root)
    await send(alice, "some")
    await alice.locator(".message").first.locator(".replies").click()
    await expect(alice.locator("#thread-replies .text")).to_have_text(["some"])
    await alice.context.set_offline(True)
    await alice.locator("#thread-text").fill("and more")
    await alice.locator("#thread-text").press("Enter")
    await expect(alice.locator("#thread-error")).to_have_text(
        "Could not reach the server; your reply is still here."
    )
    await expect(alice.locator("#thread-text")).to_have_value("and more")
    await alice.context.set_offline(False)
    await expect(alice.locator("#connection")).to_have_attribute("data-state", "live")
    await alice.locator("#thread-text").press("Enter")
    for page in (alice, bob):
        room = page.locator("#room .message .text")
        await expect(room).to_have_text(["thoughts?", "some", "and more"])
    await expect(alice.locator("#thread-replies .text")).to_have_text(["some", "and more"])
    assert errors == []


async def test_a_thread_whose_first_message_is_deleted_takes_no_more_replies(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await join(new_context, server, "alice", "lobby")
    bob = await join(new_context, server, "bob", "lobby")
    await send(alice, "soon gone")
    first = bob.locator(".message").first
    await start_reply(first)
    await send(bob, "a reply that stays")
    await bob.locator(".message").first.locator(".replies").click()
    await expect(bob.locator("#thread-text")).to_be_focused()
    await bob.locator("#thread-text").fill("half written")
    # Alice deletes her message while bob's panel is open on its thread.
    root = alice.locator(".message").first
    await root.locator(".text").click()
    await root.locator("button[data-action=delete]").click()
    await alice.locator("button[data-action=confirm-delete]").click()
    panel = bob.locator("#thread-panel")
    await expect(panel.locator("#thread-root")).to_contain_text("it takes no more replies")
    await expect(panel.locator("#thread-replies .text")).to_have_text(["a reply that stays"])
    await expect(bob.locator("#thread-composer")).to_be_hidden()
    # The focus left the hidden box for the panel's ✕ (bob's window is in the background
    # while alice clicks: the element is focused, its window not).
    await bob.wait_for_function("() => document.activeElement.id === 'thread-close'")
    # Opened afresh, the same; another thread has its composer back.
    await bob.locator("#thread-close").click()
    thread = await bob.locator(".message").first.get_attribute("data-reply-to")
    await bob.goto(f"{server.url}/rooms/lobby/?thread={thread}")
    await expect(bob.locator("#thread-root")).to_contain_text("it takes no more replies")
    await expect(bob.locator("#thread-composer")).to_be_hidden()
    await bob.locator("#thread-close").click()
    await expect(bob.locator("#connection")).to_have_attribute("data-state", "live")
    await send(alice, "a new question")
    question = bob.locator("#room .message").last
    await expect(question.locator(".text")).to_have_text("a new question")
    await start_reply(question)
    await send(bob, "a new answer")
    await bob.locator("#room .message", has_text="a new question").locator(".replies").click()
    await expect(bob.locator("#thread-composer")).to_be_visible()
    await expect(bob.locator("#thread-text")).to_be_focused()
