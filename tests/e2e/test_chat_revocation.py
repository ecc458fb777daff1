"""Access taken away ends the chat's streams at once, on every server process (real
uvicorn workers, real PostgreSQL, real HTTP clients):

- a member of a private room who leaves it, or is removed by its owner (API) or by an
  admin (Django's admin), loses that room's stream on the *other* worker within 2 s,
  their reconnect is refused, they leave the others' "Here now" with the close, and every
  other stream (theirs elsewhere, the other members') goes on;
- a log-out ends that session's streams (the room page's and the room list's);
- a cascade ends them too: a user deleted, a room deleted, a room made private;
- an account change ends that user's streams on every process: deactivated or given a
  new password (in the admin, or by any code), or issued a new API token;
- what takes nothing away (leaving a public room) ends nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from io import StringIO

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from chat.models import Membership, Presence, Room
from tests.chat_accounts import ChatAccount
from tests.clients import StreamReader, open_stream
from tests.postgres import Postgres
from tests.servers import LiveServer, ServerProcess, uvicorn_command

pytestmark = pytest.mark.django_db(transaction=True)

#: How soon a stream must end once the change that takes its access away has committed.
BOUND = 2.0


def live(reader: StreamReader) -> bool:
    """The stream has started: its position frame (an id) has arrived."""
    return bool(reader.last_id)


def present(reader: StreamReader) -> list[str] | None:
    """The last "Here now" list a stream received."""
    events = reader.of_type("presence")
    return json.loads(events[-1].data)["users"] if events else None


@dataclass
class PrivateRoom:
    """A private room owned by alice, with bob and carol as members, both present."""

    slug: str
    alice: ChatAccount
    bob: ChatAccount
    carol: ChatAccount

    def close(self) -> None:
        for account in (self.alice, self.bob, self.carol):
            account.close()


def private_room(base_url: str) -> PrivateRoom:
    alice, bob, carol = (ChatAccount(base_url, name) for name in ("alice", "bob", "carol"))
    slug = alice.create_room("Plans", private=True)
    for name in ("bob", "carol"):
        assert alice.form(f"/rooms/{slug}/invite/", username=name).status_code == 302
    # Their pages say they are here (a heartbeat each).
    for account in (bob, carol):
        beat = account.api("POST", f"/api/rooms/{slug}/presence/", {"tab": "page"})
        assert beat.status_code == 204, beat.text
    return PrivateRoom(slug, alice, bob, carol)


@asynccontextmanager
async def streams_of(account: ChatAccount, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A stream client of ``account``'s session, on the server at ``base_url``."""
    client = account.stream_client()
    client.base_url = httpx.URL(base_url)
    async with client:
        yield client


class FormFields(HTMLParser):
    """What a browser would send for the form ``form_id`` of a page, submit buttons aside."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("name")
        if tag == "form":
            self.inside = found.get("id") == self.form_id
        elif not self.inside or (name is None and tag != "option"):
            return
        elif tag == "input" and found.get("type") not in ("submit", "button", "file"):
            ticked = found.get("type") in ("checkbox", "radio")
            if ticked and "checked" not in found:
                return
            self.fields.append((name or "", found.get("value") or ("on" if ticked else "")))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select is not None and "selected" in found:
            self.fields.append((self._select, found.get("value") or ""))
        elif tag == "textarea":
            self._textarea = name
            self.fields.append((name or "", ""))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            name, text = self.fields[-1]
            self.fields[-1] = (name, text + data.removeprefix("\n"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def remove_in_the_admin(base_url: str, slug: str, username: str) -> None:
    """What an admin does: open the room in Django's admin, tick *Delete* on the member's
    row, save. Served by the worker at ``base_url``."""
    admin = User.objects.create_superuser("root", "root@example.com", "a-long-password-42")
    browser = Client()
    browser.force_login(admin)  # a session in the database: valid on every worker
    room = Room.objects.get(slug=slug)
    member = User.objects.get(username=username)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.cookies.set("sessionid", browser.cookies["sessionid"].value)
        url = f"/admin/chat/room/{room.pk}/change/"
        page = client.get(url)
        assert page.status_code == 200, page.text
        parser = FormFields("room_form")
        parser.feed(page.text)
        fields = parser.fields
        (row,) = [
            name.removesuffix("-user")
            for name, value in fields
            if name.startswith("membership_set-") and name.endswith("-user")
            if value == str(member.pk)
        ]
        fields += [(f"{row}-DELETE", "on"), ("_save", "Save")]
        saved = client.post(url, data=dict(fields))
        assert saved.status_code == 302, saved.text[:2000]


def leave(base_url: str, room: PrivateRoom) -> None:
    assert room.bob.form(f"/rooms/{room.slug}/leave/").status_code == 302


def removed_by_the_owner(base_url: str, room: PrivateRoom) -> None:
    removed = room.alice.api("DELETE", f"/api/rooms/{room.slug}/members/bob/")
    assert removed.status_code == 204, removed.text


def removed_by_an_admin(base_url: str, room: PrivateRoom) -> None:
    remove_in_the_admin(base_url, room.slug, "bob")


@pytest.mark.parametrize("take_away", [leave, removed_by_the_owner, removed_by_an_admin])
async def test_a_member_removed_loses_the_rooms_stream_on_the_other_process_at_once(
    two_processes: list[ServerProcess], take_away: Callable[[str, PrivateRoom], None]
) -> None:
    first, second = two_processes
    room = await sync_to_async(private_room)(first.url)
    url = f"/rooms/{room.slug}/events/"
    async with (
        streams_of(room.bob, second.url) as bob,
        streams_of(room.carol, second.url) as carol,
        open_stream(bob, url) as bobs_room,
        open_stream(bob, "/rooms/lobby/events/") as bobs_lobby,
        open_stream(carol, url) as carols_room,
    ):
        for reader in (bobs_room, bobs_lobby, carols_room):
            await reader.wait_for(live)
        started = time.monotonic()
        await sync_to_async(take_away)(first.url, room)  # through the *first* worker
        await bobs_room.wait_for(lambda r: r.ended, timeout=BOUND)
        ended_after = time.monotonic() - started
        # Bob left "Here now" for the others in the same transaction as the close.
        await carols_room.wait_for(lambda r: present(r) == ["carol"], timeout=BOUND)
        assert not await sync_to_async(Presence.objects.filter(user__username="bob").exists)()

        # His reconnect is refused as for any private room he may not see.
        refused = await bob.get(url, headers={"Last-Event-ID": bobs_room.last_id})
        assert refused.status_code == 404
        assert "private" in refused.json()["error"]

        # Every other stream goes on: Carol's of the room, Bob's of the lobby.
        said = await sync_to_async(room.alice.say)(room.slug, "after bob")
        hello = await sync_to_async(room.carol.say)("lobby", "hello lobby")
        await carols_room.wait_for(lambda r: r.messages() == [said])
        await bobs_lobby.wait_for(lambda r: r.messages() == [hello])
        assert not carols_room.ended
        assert not bobs_lobby.ended
        assert bobs_room.messages() == []
    assert ended_after < BOUND
    room.close()


async def test_a_log_out_ends_that_sessions_streams_on_every_process(
    two_processes: list[ServerProcess],
) -> None:
    first, second = two_processes
    bob = await sync_to_async(ChatAccount)(first.url, "bob")
    carol = await sync_to_async(ChatAccount)(first.url, "carol")
    async with (
        streams_of(bob, second.url) as on_second,
        streams_of(bob, first.url) as on_first,
        streams_of(carol, second.url) as carols,
        open_stream(on_second, "/rooms/lobby/events/") as room_page,  # one tab
        open_stream(on_first, "/events/me/") as room_list,  # another tab
        open_stream(carols, "/rooms/lobby/events/") as carols_page,
    ):
        for reader in (room_page, room_list, carols_page):
            await reader.wait_for(live)
        started = time.monotonic()
        logged_out = await sync_to_async(bob.form)("/accounts/logout/")
        assert logged_out.status_code == 302
        for reader in (room_page, room_list):
            await reader.wait_for(lambda r: r.ended, timeout=BOUND)
        ended_after = time.monotonic() - started

        for client, url in ((on_second, "/rooms/lobby/events/"), (on_first, "/events/me/")):
            refused = await client.get(url)
            assert refused.status_code == 401
            assert "Log in" in refused.json()["error"]
        said = await sync_to_async(carol.say)("lobby", "still here")
        await carols_page.wait_for(lambda r: r.messages() == [said])
        assert not carols_page.ended
    assert ended_after < BOUND
    bob.close()
    carol.close()


async def test_deleting_a_member_or_a_room_ends_their_streams(server: LiveServer) -> None:
    room = await sync_to_async(private_room)(server.url)
    url = f"/rooms/{room.slug}/events/"
    async with (
        streams_of(room.alice, server.url) as alice,
        streams_of(room.bob, server.url) as bob,
        streams_of(room.carol, server.url) as carol,
        open_stream(alice, url) as alices,
        open_stream(bob, url) as bobs,
        open_stream(bob, "/rooms/lobby/events/") as bobs_lobby,
        open_stream(carol, url) as carols,
        open_stream(carol, "/rooms/lobby/events/") as carols_lobby,
    ):
        for reader in (alices, bobs, bobs_lobby, carols, carols_lobby):
            await reader.wait_for(live)
        # An account deleted (in the admin, say): all its streams end, and its
        # memberships go in a cascade, taking it out of "Here now".
        await sync_to_async(User.objects.filter(username="bob").delete)()
        for reader in (bobs, bobs_lobby):
            await reader.wait_for(lambda r: r.ended, timeout=BOUND)
        await carols.wait_for(lambda r: present(r) == ["carol"], timeout=BOUND)
        assert not alices.ended

        # The room deleted: every stream of it ends, and the reconnect finds no room.
        await sync_to_async(Room.objects.filter(slug=room.slug).delete)()
        for reader in (alices, carols):
            await reader.wait_for(lambda r: r.ended, timeout=BOUND)
        assert (await alice.get(url)).status_code == 404
        said = await sync_to_async(room.carol.say)("lobby", "the lobby goes on")
        await carols_lobby.wait_for(lambda r: r.messages() == [said])
    room.close()


async def test_a_room_made_private_ends_its_readers_streams(server: LiveServer) -> None:
    alice = await sync_to_async(ChatAccount)(server.url, "alice")
    carol = await sync_to_async(ChatAccount)(server.url, "carol")
    slug = await sync_to_async(alice.create_room)("Open plans")
    url = f"/rooms/{slug}/events/"

    def make_private() -> None:  # what the admin's form does
        found = Room.objects.get(slug=slug)
        found.private = True
        found.save()

    async with (
        streams_of(alice, server.url) as alices_client,
        streams_of(carol, server.url) as carols_client,
        open_stream(alices_client, url) as owner,
        open_stream(carols_client, url) as reader,
    ):
        await owner.wait_for(live)
        await reader.wait_for(live)
        await sync_to_async(make_private)()
        for stream in (owner, reader):
            await stream.wait_for(lambda r: r.ended, timeout=BOUND)
        # Carol is not a member: the room now looks like none. Alice is: she is back.
        assert (await carols_client.get(url)).status_code == 404
        async with open_stream(alices_client, url, last_event_id=owner.last_id) as again:
            await again.wait_for(live)
    alice.close()
    carol.close()


async def test_leaving_a_public_room_ends_nothing(server: LiveServer) -> None:
    bob = await sync_to_async(ChatAccount)(server.url, "bob")
    assert (await sync_to_async(bob.form)("/rooms/lobby/join/")).status_code == 302
    async with (
        streams_of(bob, server.url) as client,
        open_stream(client, "/rooms/lobby/events/") as reader,
    ):
        await reader.wait_for(live)
        assert (await sync_to_async(bob.form)("/rooms/lobby/leave/")).status_code == 302
        assert not await sync_to_async(Membership.objects.filter(user__username="bob").exists)()
        # The lobby stays readable to him: his page goes on.
        said = await sync_to_async(bob.say)("lobby", "still reading")
        await reader.wait_for(lambda r: r.messages() == [said])
        assert not reader.ended
    bob.close()


def test_the_owners_removal_form_on_the_room_page(server: LiveServer) -> None:
    room = private_room(server.url)
    page = room.alice.client.get(f"/rooms/{room.slug}/").text
    assert 'aria-label="Remove bob from' in page
    assert 'aria-label="Remove alice from' not in page  # the owner stays
    # Members see who is in the room, but have no Remove button.
    assert "Remove" not in room.bob.client.get(f"/rooms/{room.slug}/").text
    removed = room.alice.form(f"/rooms/{room.slug}/remove/", username="bob")
    assert removed.status_code == 302
    back = room.alice.client.get(f"/rooms/{room.slug}/").text
    assert "bob was removed from" in back
    assert room.bob.client.get(f"/rooms/{room.slug}/").status_code == 404
    room.close()


def admin_form(base_url: str, url: str, **changes: str | None) -> None:
    """What an admin does on the page at ``url`` (its ``user_form``): change some fields
    (None unticks a checkbox), save. Served by the worker at ``base_url``."""
    root = User.objects.filter(username="root").first() or User.objects.create_superuser(
        "root", "root@example.com", "a-long-password-42"
    )
    browser = Client()
    browser.force_login(root)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.cookies.set("sessionid", browser.cookies["sessionid"].value)
        page = client.get(url)
        assert page.status_code == 200, page.text[:2000]
        parser = FormFields("user_form")
        parser.feed(page.text)
        fields = dict(parser.fields)
        for name, value in changes.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        saved = client.post(url, data=fields)
        errors = re.findall(r'<ul class="errorlist[^>]*>.*?</ul>', saved.text, re.S)
        assert saved.status_code == 302, (errors, fields)


def deactivated_in_the_admin(base_url: str, bob: User) -> None:
    admin_form(base_url, f"/admin/auth/user/{bob.pk}/change/", is_active=None, _save="Save")


def new_password_in_the_admin(base_url: str, bob: User) -> None:
    admin_form(
        base_url,
        f"/admin/auth/user/{bob.pk}/password/",
        usable_password="true",
        password1="another-long-password-77",
        password2="another-long-password-77",
    )


def new_password_in_code(base_url: str, bob: User) -> None:
    """Any code path: a shell, a password-reset view, a management command."""
    bob.set_password("another-long-password-77")
    bob.save()


def deactivated_in_code(base_url: str, bob: User) -> None:
    bob.is_active = False
    bob.save(update_fields=["is_active"])


@pytest.mark.parametrize(
    "change",
    [
        deactivated_in_the_admin,
        new_password_in_the_admin,
        new_password_in_code,
        deactivated_in_code,
    ],
)
async def test_an_account_change_ends_that_users_streams_on_every_process(
    two_processes: list[ServerProcess], change: Callable[[str, User], None]
) -> None:
    first, second = two_processes
    bob = await sync_to_async(ChatAccount)(first.url, "bob")
    carol = await sync_to_async(ChatAccount)(first.url, "carol")
    bobs_user = await sync_to_async(User.objects.get)(username="bob")
    async with (
        streams_of(bob, second.url) as on_second,
        streams_of(bob, first.url) as on_first,
        streams_of(carol, second.url) as carols,
        open_stream(on_second, "/rooms/lobby/events/") as room_page,
        open_stream(on_first, "/events/me/") as room_list,
        open_stream(carols, "/rooms/lobby/events/") as carols_page,
    ):
        for reader in (room_page, room_list, carols_page):
            await reader.wait_for(live)
        started = time.monotonic()
        await sync_to_async(change)(first.url, bobs_user)
        for reader in (room_page, room_list):
            await reader.wait_for(lambda r: r.ended, timeout=BOUND)
        ended_after = time.monotonic() - started

        # The session no longer authenticates: the reconnect is refused.
        for client, url in ((on_second, "/rooms/lobby/events/"), (on_first, "/events/me/")):
            refused = await client.get(url, headers={"Accept": "text/event-stream"})
            assert refused.status_code == 401, refused.text
        said = await sync_to_async(carol.say)("lobby", "still here")
        await carols_page.wait_for(lambda r: r.messages() == [said])
        assert not carols_page.ended
    assert ended_after < BOUND
    bob.close()
    carol.close()


def issue_token(username: str) -> str:
    out = StringIO()
    call_command("chat_token", username, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


async def test_a_new_api_token_ends_the_streams_opened_with_the_old_one(
    two_processes: list[ServerProcess],
) -> None:
    first, second = two_processes
    old = await sync_to_async(issue_token)("bot")
    carol = await sync_to_async(ChatAccount)(first.url, "carol")
    async with (
        httpx.AsyncClient(
            base_url=second.url,
            timeout=httpx.Timeout(30, read=None),
            headers={"Authorization": f"Bearer {old}"},
        ) as bot,
        streams_of(carol, second.url) as carols,
        open_stream(bot, "/rooms/lobby/events/") as bots_stream,
        open_stream(carols, "/rooms/lobby/events/") as carols_page,
    ):
        await bots_stream.wait_for(live)
        await carols_page.wait_for(live)
        started = time.monotonic()
        new = await sync_to_async(issue_token)("bot")
        await bots_stream.wait_for(lambda r: r.ended, timeout=BOUND)
        ended_after = time.monotonic() - started
        refused = await bot.get("/rooms/lobby/events/")
        assert refused.status_code == 401
        assert "not valid" in refused.json()["error"]
        bot.headers["Authorization"] = f"Bearer {new}"
        async with open_stream(bot, "/rooms/lobby/events/") as again:
            assert again.status_code == 200
            said = await sync_to_async(carol.say)("lobby", "for the new token")
            await again.wait_for(lambda r: r.messages() == [said])
        assert not carols_page.ended
    assert ended_after < BOUND
    carol.close()


async def test_a_change_no_signal_reports_ends_streams_at_the_next_recheck(
    transactional_db: None, pg: Postgres
) -> None:
    """An UPDATE behind the chat's back (no signal, so no close request): pgsse's periodic
    re-check (REAUTHORIZE_INTERVAL, five minutes by default, half a second here) runs the
    stream's request phase again, the chat's hooks refuse it, and the stream ends."""
    await sync_to_async(Room.objects.get_or_create)(slug="lobby", defaults={"name": "Lobby"})
    server = ServerProcess(
        uvicorn_command(), pg.url, TEST_PGSSE=json.dumps({"REAUTHORIZE_INTERVAL": 0.5})
    ).start()
    bob = carol = None
    try:
        bob = await sync_to_async(ChatAccount)(server.url, "bob")
        carol = await sync_to_async(ChatAccount)(server.url, "carol")
        async with (
            streams_of(bob, server.url) as bobs,
            streams_of(carol, server.url) as carols,
            open_stream(bobs, "/rooms/lobby/events/") as bobs_page,
            open_stream(carols, "/rooms/lobby/events/") as carols_page,
        ):
            await bobs_page.wait_for(live)
            await carols_page.wait_for(live)
            await sync_to_async(User.objects.filter(username="bob").update)(is_active=False)
            await bobs_page.wait_for(lambda r: r.ended, timeout=10)
            refused = await bobs.get("/rooms/lobby/events/")
            assert refused.status_code == 401
            said = await sync_to_async(carol.say)("lobby", "still here")
            await carols_page.wait_for(lambda r: r.messages() == [said])
            assert not carols_page.ended
    finally:
        for account in (bob, carol):
            if account is not None:
                account.close()
        server.stop()
