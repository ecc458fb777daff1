"""Abuse resistance: every write is rate limited per user and per client address (429 with
Retry-After, shared through PostgreSQL), log-ins are throttled, and the htmx board is not
served unless turned on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from chat.models import Message, Presence, RateHit, Room
from pgsse.models import Event
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def refused(response: httpx.Response, says: str) -> None:
    assert response.status_code == 429, response.text
    assert says in response.text
    assert 1 <= int(response.headers["retry-after"]) <= 600


def test_edits_are_limited_and_refused_ones_are_neither_stored_nor_published(
    server: LiveServer,
) -> None:
    alice = ChatAccount(server.url, "alice")
    sent = alice.say("lobby", "v0")
    url = f"/api/rooms/lobby/messages/{sent['id']}/"
    statuses = [alice.api("PATCH", url, {"text": f"v{n}"}).status_code for n in range(1, 40)]
    assert statuses[:10] == [200] * 10
    assert set(statuses[10:]) == {429}
    refused(alice.api("DELETE", url), "edits")
    assert Message.objects.get(id=sent["id"]).text == "v10"
    # The creation and the 10 accepted edits, each an event; the older versions redacted.
    events = Event.objects.filter(channel=Room.objects.get(slug="lobby").channel)
    assert events.count() == 11
    kept = events.filter(redacted_at__isnull=True)
    assert list(kept.values_list("type", flat=True)) == ["message_updated"]
    alice.close()


def test_room_creation_is_limited(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    statuses = [
        alice.api("POST", "/api/rooms/", {"name": f"Room {n}"}).status_code for n in range(8)
    ]
    assert statuses == [201] * 5 + [429] * 3
    # The page's form too: an HTML 429 page, not a redirect that creates nothing quietly.
    refused(alice.form("/rooms/new/", name="One more"), "new rooms")
    assert Room.objects.filter(slug__startswith="room-").count() == 5
    alice.close()


def test_presence_with_made_up_tab_ids_is_bounded(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    statuses = [
        alice.api("POST", "/api/rooms/lobby/presence/", {"tab": f"tab-{n}"}).status_code
        for n in range(30)
    ]
    assert statuses[:10] == [204] * 10
    assert set(statuses[10:]) == {429}
    assert Presence.objects.count() == 10
    alice.close()


def test_limits_are_per_client_address_too(server: LiveServer, settings: Any) -> None:
    """New accounts do not buy new allowances: the address has its own limit."""
    settings.CHAT_RATE_LIMITS = {"message": (10, 4, 10.0)}
    people = [ChatAccount(server.url, name) for name in ("alice", "bob", "carol")]
    statuses = [person.post("lobby", "hi").status_code for person in people for _ in range(2)]
    assert statuses == [201] * 4 + [429] * 2
    assert RateHit.objects.filter(key__startswith="message:address:127.0.0.1").count() == 4
    for person in people:
        person.close()


def test_signups_are_limited_per_address(server: LiveServer) -> None:
    for n in range(5):
        ChatAccount(server.url, f"user{n}").close()
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/signup/").raise_for_status()
        form = {"username": "user5", "password1": PASSWORD, "password2": PASSWORD}
        response = client.post(
            "/accounts/signup/", data=form, headers={"X-CSRFToken": client.cookies["csrftoken"]}
        )
        refused(response, "new accounts from your address")
        assert 'id="refused"' in response.text
    assert not User.objects.filter(username="user5").exists()


def test_log_in_is_throttled_after_five_failures(server: LiveServer) -> None:
    ChatAccount(server.url, "alice").close()
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/login/").raise_for_status()

        def log_in(password: str) -> httpx.Response:
            return client.post(
                "/accounts/login/",
                data={"username": "alice", "password": password},
                headers={"X-CSRFToken": client.cookies["csrftoken"]},
            )

        statuses = [log_in(f"wrong-{n}").status_code for n in range(4)]
        assert statuses == [200] * 4  # the form again, with its error
        locked = log_in("wrong-again")  # the fifth failure locks
        refused(locked, "Too many failed log-ins")
        assert int(locked.headers["retry-after"]) == 300
        # Locked means locked: the right password is refused too, until the cool-off.
        refused(log_in(PASSWORD), "Too many failed log-ins")
        assert "sessionid" not in client.cookies


def log_in_from(address: str, server: LiveServer, username: str, password: str) -> httpx.Response:
    """A log-in posted from ``address`` (any of 127.0.0.0/8: the server sees it as the
    client's address)."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=server.url, transport=transport) as client:
        client.get("/accounts/login/").raise_for_status()
        return client.post(
            "/accounts/login/",
            data={"username": username, "password": password},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )


def test_a_lockout_is_per_username_and_address_and_says_one_thing(server: LiveServer) -> None:
    ChatAccount(server.url, "alice").close()
    # Five failures for a made-up name from one address lock that name there, nobody else.
    statuses = [log_in_from("127.0.0.1", server, "ghost", "guess").status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    assert log_in_from("127.0.0.1", server, "alice", PASSWORD).status_code == 302
    # Five failures for alice from another address lock her out there only.
    for _ in range(5):
        locked = log_in_from("127.0.0.2", server, "alice", "wrong")
    refused(locked, "Too many failed log-ins for this username from your address")
    locked = log_in_from("127.0.0.2", server, "alice", PASSWORD)
    refused(locked, "Too many failed log-ins")
    # One message, not the form's own error besides it; the username stays filled in.
    assert locked.text.count("Too many failed log-ins") == 1
    assert "correct username and password" not in locked.text
    assert 'value="alice"' in locked.text
    assert log_in_from("127.0.0.1", server, "alice", PASSWORD).status_code == 302


def test_the_htmx_board_is_not_served_unless_turned_on(server: LiveServer, settings: Any) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/login/").raise_for_status()
        token = client.cookies["csrftoken"]
        note = {"author": "a", "text": "b"}
        assert client.get("/htmx/").status_code == 404
        posted = client.post("/htmx/notes/", data=note, headers={"X-CSRFToken": token})
        assert posted.status_code == 404
        with client.stream("GET", "/htmx/events/") as stream:
            assert stream.status_code == 404
        assert not Event.objects.filter(channel="htmx:board").exists()
        settings.CHAT_HTMX_RECIPE = True
        assert client.get("/htmx/").status_code == 200
        statuses = [
            client.post(
                "/htmx/notes/",
                data={"author": "a", "text": f"note {n}"},
                headers={"X-CSRFToken": token},
            ).status_code
            for n in range(12)
        ]
        assert statuses == [204] * 10 + [429] * 2
        assert Event.objects.filter(channel="htmx:board").count() == 10
