"""Room settings, display names and the parts of a page that must not go stale, in
Chromium with two users: a room renamed, its topic set, handed over and deleted from the
interface (by keyboard alone too) reach the other's open page at once; a new display name
redraws messages, member lists and presence; a member who leaves disappears with their
Remove button; Join becomes Leave when posting joined; a logged-out user leaves "Here
now" at once; every room's tab title is its name (issue 22, bugs 1, 4, 5)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import BrowserContext, Page, expect

from chat.models import Room
from chat.profiles import initials
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


async def private_room(page: Page, name: str) -> str:
    """Create a private room from the room list (the page shows it); its slug."""
    await page.fill("#room-name", name)
    await page.check("input[name=private]")
    await page.click("#new-room button")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page.url.rstrip("/").rsplit("/", 1)[1]


async def test_settings_reach_the_other_page_live(
    server: LiveServer, new_context: NewContext
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    bob_context = await sign_up(new_context, server.url, "bob")
    start = await alice_context.new_page()
    await start.goto(f"{server.url}/")
    slug = await private_room(start, "Plans")
    await start.fill("#invite-username", "bob")
    await start.click(".invite button")
    await expect(start.locator(".notices")).to_contain_text("bob may now enter Plans.")
    bob = await open_room(bob_context, server.url, slug)
    await send(bob, "bob was here")
    alice = start
    await expect(alice.locator(".message")).to_have_count(1)
    # Bob's page: no settings, no Delete on alice's messages, no Remove buttons.
    await expect(bob.locator("#settings-link")).to_be_hidden()
    await expect(bob).to_have_title("Plans · pgsse chat")
    # Alice renames it and sets its topic from the interface.
    await alice.click("#settings-link")
    await expect(alice.locator("h1")).to_have_text("Settings of Plans")
    assert await violations(alice) == [], "the settings page"
    await alice.fill("#room-name", "Secret plans")
    await alice.fill("#room-topic", "What we do in Q3")
    await alice.click("#naming button")
    await expect(alice.locator(".notices")).to_contain_text("Saved: Secret plans.")
    for page in (alice, bob):
        await expect(page.locator("#room-name")).to_have_text("Secret plans")
        await expect(page.locator("#room-topic")).to_have_text("What we do in Q3")
        await expect(page.locator(f'#my-rooms a[href="/rooms/{slug}/"] .room-label')).to_have_text(
            "Secret plans"
        )
    await expect(bob).to_have_title("Secret plans · pgsse chat")
    await expect(bob.locator("#text")).to_have_attribute("placeholder", "Message Secret plans")
    assert slug not in await bob.locator("body").inner_text()
    # Alice hands it over to bob: bob's open page becomes the owner's at once.
    await alice.click("#settings-link")
    await alice.select_option("#room-owner", "bob")
    await alice.click("#hand-over button")
    await expect(alice.locator(".notices")).to_contain_text("bob owns Secret plans now.")
    await expect(bob.locator("#settings-link")).to_be_visible()
    await expect(bob.locator("#invite-form")).to_be_visible()
    await expect(bob.locator("#leave-form")).to_be_hidden()
    await expect(bob.get_by_role("button", name="Remove alice from Secret plans")).to_be_visible()
    await expect(alice.locator("#settings-link")).to_be_hidden()
    await expect(alice.locator("#leave-form")).to_be_visible()
    await send(alice, "alice's message")
    mine = bob.locator(".message").filter(has_text="alice's message")
    await mine.hover()
    await expect(mine.locator("button[data-action=delete]")).to_be_visible()
    await expect(bob.locator("#members .badge.owner")).to_have_count(1)
    await expect(bob.locator('#members li[data-member="bob"] .badge.owner')).to_have_count(1)
    # Bob deletes it, by keyboard alone: alice's open page says so and stops; her room
    # list drops it.
    index = await alice_context.new_page()
    await index.goto(f"{server.url}/")
    await expect(index.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(index.locator(f'#my-rooms a[href="/rooms/{slug}/"]')).to_have_count(1)
    await bob.locator("#settings-link").focus()
    await bob.keyboard.press("Enter")
    await expect(bob.locator("h1")).to_have_text("Settings of Secret plans")
    await bob.locator("#delete-room input[name=confirm]").focus()
    await bob.keyboard.press("Space")
    await bob.keyboard.press("Tab")
    await bob.keyboard.press("Enter")
    await expect(bob.locator(".notices")).to_contain_text("Secret plans was deleted")
    await expect(bob.locator(f'#my-rooms a[href="/rooms/{slug}/"]')).to_have_count(0)
    await expect(alice.locator("#stream-notice")).to_contain_text(
        "You no longer have access to Secret plans (you left it, were removed, or it was deleted)"
    )
    await expect(alice.locator("#text")).to_be_disabled()
    await expect(index.locator(f'#my-rooms a[href="/rooms/{slug}/"]')).to_have_count(0)
    await expect(index.locator("#connection")).to_have_attribute("data-state", "live")


async def test_a_new_display_name_redraws_every_page(
    server: LiveServer, new_context: NewContext, settings: object
) -> None:
    # The page's own typing notice may be a moment old: the API's must not be refused.
    settings.CHAT_RATE_LIMITS = {"typing": (100, 100, 2.0)}  # type: ignore[attr-defined]
    bob_context = await sign_up(new_context, server.url, "bob")
    alice = await open_room(await sign_up(new_context, server.url, "alice"), server.url, "lobby")
    bob = await open_room(bob_context, server.url, "lobby")
    await send(bob, "hello")
    await expect(alice.locator(".message .author")).to_have_text(["bob"])
    await expect(alice.locator("#presence li")).to_have_text(["alice", "bob"])
    carol = await sync_to_async(ChatAccount)(server.url, "carol")
    await sync_to_async(carol.api)("POST", "/api/direct/", {"users": ["alice", "bob"]})
    carol.close()
    await expect(alice.locator("#direct-rooms .room-label")).to_have_text(["bob, carol"])
    # Bob names himself on his profile page.
    profile = await bob_context.new_page()
    await profile.goto(f"{server.url}/accounts/profile/")
    assert await violations(profile) == [], "the profile page"
    await profile.fill("#id_display_name", "Robert Zimmerman")
    await profile.click("#profile-form button")
    await expect(profile.locator(".notices")).to_contain_text("Your profile is saved.")
    await expect(profile.locator("#me")).to_have_text("Robert Zimmerman")
    # Alice's open page: his message, the member list, presence, the conversation.
    await expect(alice.locator(".message .author")).to_have_text(["Robert Zimmerman"])
    await expect(alice.locator(".message .avatar")).to_have_text(["RZ"])
    await expect(alice.locator('#members [data-person="bob"]')).to_have_text("Robert Zimmerman")
    await expect(alice.locator("#presence li")).to_have_text(["alice", "Robert Zimmerman"])
    await expect(alice.locator("#direct-rooms .room-label")).to_have_text(
        ["carol, Robert Zimmerman"]
    )
    await expect(
        alice.get_by_role("button", name="Message Robert Zimmerman directly")
    ).to_have_count(1)
    # The typing line says it (a notice sent through the API: the page sends one per 3
    # seconds at most); new messages carry it.
    bob_api = await sync_to_async(ChatAccount)(server.url, "bob", signup=False)
    hello = int(await alice.locator(".message").first.get_attribute("data-id") or 0)
    typing = await sync_to_async(bob_api.api)("POST", "/api/rooms/lobby/typing/", {"after": hello})
    bob_api.close()
    assert typing.status_code == 204, typing.text
    await expect(alice.locator("#typing")).to_have_text("Robert Zimmerman is typing…")
    await send(bob, "named")
    await expect(alice.locator(".message .author")).to_have_text(["Robert Zimmerman"] * 2)


async def test_page_parts_never_go_stale(
    server: LiveServer, new_context: NewContext, settings: object
) -> None:
    alice_context = await sign_up(new_context, server.url, "alice")
    bob_context = await sign_up(new_context, server.url, "bob")
    start = await alice_context.new_page()
    await start.goto(f"{server.url}/")
    slug = await private_room(start, "Plans")
    await start.fill("#invite-username", "bob")
    await start.click(".invite button")
    alice = start
    await expect(alice.locator("#members .member-name")).to_have_text(["alice", "bob"])
    # Bob leaves from his page: alice's list drops him and his Remove button at once.
    bob = await open_room(bob_context, server.url, slug)
    await bob.click("text=Leave")
    await expect(bob.locator(".notices")).to_contain_text("You left Plans.")
    await expect(alice.locator("#members .member-name")).to_have_text(["alice"])
    await expect(alice.locator("#members .remove")).to_have_count(0)
    await expect(alice.locator("#members-count")).to_have_text("1")
    # Inviting him again shows him again, live, with his Remove button.
    alice_api = await sync_to_async(ChatAccount)(server.url, "alice", signup=False)
    await sync_to_async(alice_api.form)(f"/rooms/{slug}/invite/", username="bob")
    alice_api.close()
    await expect(alice.locator("#members .member-name")).to_have_text(["alice", "bob"])
    await expect(alice.get_by_role("button", name="Remove bob from Plans")).to_be_visible()
    # In a public room, posting joins it: Join becomes Leave, and the others' member
    # list shows the poster, without a reload.
    lobby_alice = await open_room(alice_context, server.url, "random")
    lobby_bob = await open_room(bob_context, server.url, "random")
    await expect(lobby_bob.locator("#join-form")).to_be_visible()
    await expect(lobby_bob.locator("#leave-form")).to_be_hidden()
    await send(lobby_bob, "joining by posting")
    await expect(lobby_bob.locator("#join-form")).to_be_hidden()
    await expect(lobby_bob.locator("#leave-form")).to_be_visible()
    await expect(lobby_alice.locator("#members .member-name")).to_have_text(["bob"])
    await expect(lobby_bob.locator('#my-rooms a[href="/rooms/random/"]')).to_have_count(1)
    # Leaving in another tab: Join again on this one, and gone from "My rooms".
    other = await open_room(bob_context, server.url, "random")
    await other.click("text=Leave")
    await expect(lobby_bob.locator("#join-form")).to_be_visible()
    await expect(lobby_bob.locator('#my-rooms a[href="/rooms/random/"]')).to_have_count(0)
    await expect(lobby_alice.locator("#members .member-name")).to_have_count(0)


async def test_a_log_out_leaves_here_now_at_once(
    server: LiveServer, new_context: NewContext, settings: object
) -> None:
    settings.CHAT_PRESENCE_TIMEOUT = 600.0  # type: ignore[attr-defined]
    alice_context = await sign_up(new_context, server.url, "alice")
    alice = await open_room(alice_context, server.url, "lobby")
    bob = await open_room(await sign_up(new_context, server.url, "bob"), server.url, "lobby")
    await expect(bob.locator("#presence li")).to_have_text(["alice", "bob"])
    await expect(bob).to_have_title("#Lobby · pgsse chat")
    other = await alice_context.new_page()
    await other.goto(f"{server.url}/")
    await other.click("text=Log out")
    # At once, not after the 600 s expiry set above (10 s leaves a loaded machine room).
    await expect(bob.locator("#presence li")).to_have_text(["bob"], timeout=10_000)
    await expect(alice.locator("#connection")).to_have_text("logged out")
    present = await sync_to_async(
        lambda: list(
            Room.objects.get(slug="lobby").presences.values_list("user__username", flat=True)
        )
    )()
    assert present == ["bob"]


async def test_avatars_show_letters_whatever_the_name_and_as_the_server_draws_them(
    server: LiveServer, new_context: NewContext
) -> None:
    alice = await open_room(await sign_up(new_context, server.url, "alice"), server.url, "lobby")
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    names = {"<b>Bob</b> (home)": "BH", "😀 Smile": "S", "élodie martin": "ÉM", "(_)": "?"}
    for name, letters in names.items():
        assert initials(name) == letters, name
        saved = await sync_to_async(bob.form)("/accounts/profile/", display_name=name)
        assert saved.status_code == 302, saved.text
        await sync_to_async(bob.say)("lobby", f"as {name}")
        # Drawn by the page (profiles.js), live, for every message of his.
        await expect(alice.locator(".message .avatar").last).to_have_text(letters)
        await expect(alice.locator(".message .avatar").first).to_have_text(letters)
    await sync_to_async(bob.close)()
