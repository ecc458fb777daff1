"""Every status code of every chat endpoint, the room stream included: always JSON, with
what was wrong and what is accepted. Over real HTTP: real uvicorn, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer, ServerProcess, uvicorn_command

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/json"


def token_for(username: str) -> str:
    out = StringIO()
    call_command("chat_token", username, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


@dataclass
class Case:
    """One request and the answer it must get."""

    what: str
    send: Callable[[], httpx.Response]
    status: int
    says: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def check(cases: list[Case]) -> None:
    for case in cases:
        response = case.send()
        assert response.status_code == case.status, (case.what, response.status_code)
        if case.status >= 400:
            assert response.headers["content-type"] == JSON, (case.what, response.text)
            message = response.json()["error"]
            assert case.says in message, (case.what, message)
        for name, value in case.headers:
            assert response.headers.get(name) == value, (case.what, name, response.headers)


@pytest.fixture
def people(server: LiveServer, settings: Any) -> Iterator[dict[str, Any]]:
    """alice (owns a private room), bob (outsider), an anonymous client and a bot token."""
    alice = ChatAccount(server.url, "alice")
    bob = ChatAccount(server.url, "bob")
    private = alice.create_room("Plans", private=True)
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    people = {
        "alice": alice,
        "bob": bob,
        "private": private,
        "anonymous": anonymous,
        "bot": {"Authorization": f"Bearer {token_for('bot')}"},
        "stale": {"Authorization": "Bearer not-a-token"},
    }
    yield people
    alice.close()
    bob.close()
    anonymous.close()


def test_create_room_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, anonymous = people["alice"], people["anonymous"]
    settings.CHAT_RATE_LIMITS = {"room": (3, 100, 60.0)}  # the fixture made one
    url = "/api/rooms/"
    check(
        [
            Case("created", lambda: alice.api("POST", url, {"name": "Ops"}), 201),
            Case("bad name", lambda: alice.api("POST", url, {"name": "!!"}), 400, "letter"),
            Case(
                "not JSON",
                lambda: alice.client.post(
                    url,
                    content=b"{",
                    headers={"Content-Type": JSON, "X-CSRFToken": alice.csrf_token},
                ),
                400,
                "not valid JSON",
            ),
            Case(
                "anonymous",
                lambda: anonymous.post(url, json={"name": "x"}),
                401,
                "Log in",
                (("www-authenticate", "Bearer"),),
            ),
            Case(
                "bad token",
                lambda: anonymous.post(url, json={"name": "x"}, headers=people["stale"]),
                401,
                "not valid",
                (("www-authenticate", "Bearer"),),
            ),
            Case(
                "no bearer",
                lambda: anonymous.post(
                    url, json={"name": "x"}, headers={"Authorization": "Basic eDp5"}
                ),
                401,
                "Bearer",
            ),
            Case("CSRF", lambda: alice.client.post(url, json={"name": "x"}), 403, "CSRF"),
            Case(
                "method",
                lambda: alice.api("PUT", url, {"name": "x"}),
                405,
                "GET or POST",
                (("allow", "GET, POST"),),
            ),
            Case(
                "too large",
                lambda: alice.api("POST", url, {"name": "x" * 3_000_000}),
                413,
                "too large",
            ),
            Case("second", lambda: alice.api("POST", url, {"name": "Ops 2"}), 201),
            Case("rate", lambda: alice.api("POST", url, {"name": "Ops 3"}), 429, "new rooms"),
        ]
    )


def test_message_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous, private = (
        people["alice"],
        people["bob"],
        people["anonymous"],
        people["private"],
    )
    settings.CHAT_RATE_LIMITS = {"message": (3, 100, 10.0)}
    url = "/api/rooms/lobby/messages/"
    check(
        [
            Case("posted", lambda: alice.api("POST", url, {"text": "hi"}), 201),
            Case(
                "by token",
                lambda: anonymous.post(url, json={"text": "beep"}, headers=people["bot"]),
                201,
            ),
            Case("history", lambda: alice.api("GET", url), 200),
            Case("empty", lambda: alice.api("POST", url, {"text": " "}), 400, "empty"),
            Case("bad limit", lambda: alice.api("GET", url + "?limit=1000"), 400, "'limit'"),
            Case("bad before", lambda: alice.api("GET", url + "?before=-1"), 400, "'before'"),
            Case("anonymous", lambda: anonymous.get(url), 401, "Log in"),
            Case("bad token", lambda: anonymous.get(url, headers=people["stale"]), 401, "token"),
            Case("CSRF", lambda: alice.client.post(url, json={"text": "x"}), 403, "CSRF"),
            Case(
                "unknown room",
                lambda: alice.api("GET", "/api/rooms/nowhere/messages/"),
                404,
                "nowhere",
            ),
            Case(
                "private, outsider",
                lambda: bob.api("GET", f"/api/rooms/{private}/messages/"),
                404,
                "no room",
            ),
            Case(
                "private, post",
                lambda: bob.api("POST", f"/api/rooms/{private}/messages/", {"text": "let me in"}),
                404,
                "no room",
            ),
            Case("method", lambda: alice.api("PUT", url, {"text": "x"}), 405, "GET or POST"),
            Case("too long", lambda: alice.api("POST", url, {"text": "x" * 4001}), 413, "4000"),
            Case(
                "form too large",
                lambda: alice.client.post(
                    "/rooms/lobby/messages/",
                    data={"text": "x" * 3_000_000},
                    headers={"X-CSRFToken": alice.csrf_token},
                ),
                413,
                "too large",
            ),
            Case("posted 2", lambda: alice.api("POST", url, {"text": "two"}), 201),
            Case("posted 3", lambda: alice.api("POST", url, {"text": "three"}), 201),
            Case(
                "rate",
                lambda: alice.api("POST", url, {"text": "four"}),
                429,
                "messages",
            ),
            Case(
                "unknown endpoint",
                lambda: alice.api("GET", "/api/rooms/lobby/nothing/"),
                404,
                "no API endpoint",
            ),
            Case("no slash", lambda: alice.api("POST", "/api/rooms"), 404, "trailing slash"),
        ]
    )


def test_edit_and_delete_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous = people["alice"], people["bob"], people["anonymous"]
    settings.CHAT_RATE_LIMITS = {"edit": (3, 100, 10.0)}
    mine = alice.say("lobby", "mine")["id"]
    other = alice.say("lobby", "other")["id"]
    url = f"/api/rooms/lobby/messages/{mine}/"
    check(
        [
            Case("edited", lambda: alice.api("PATCH", url, {"text": "edited"}), 200),
            Case("empty", lambda: alice.api("PATCH", url, {"text": ""}), 400, "empty"),
            Case("anonymous", lambda: anonymous.patch(url, json={"text": "x"}), 401, "Log in"),
            Case("not author", lambda: bob.api("PATCH", url, {"text": "x"}), 403, "author"),
            Case("not owner", lambda: bob.api("DELETE", url), 403, "owner"),
            Case(
                "no message",
                lambda: alice.api("DELETE", "/api/rooms/lobby/messages/999999/"),
                404,
                "999999",
            ),
            Case("read", lambda: alice.api("GET", url), 200),
            Case("method", lambda: alice.api("POST", url, {}), 405, "GET or PATCH or DELETE"),
            Case("too long", lambda: alice.api("PATCH", url, {"text": "x" * 4001}), 413, "4000"),
            Case(
                "deleted", lambda: alice.api("DELETE", f"/api/rooms/lobby/messages/{other}/"), 204
            ),
            Case("edited 2", lambda: alice.api("PATCH", url, {"text": "again"}), 200),
            Case("rate", lambda: alice.api("PATCH", url, {"text": "more"}), 429, "edits"),
        ]
    )


def test_presence_typing_and_read_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, anonymous, private = people["alice"], people["anonymous"], people["private"]
    bob, bot = people["bob"], people["bot"]
    settings.CHAT_PRESENCE_MAX_TABS = 2
    base = "/api/rooms/lobby"
    check(
        [
            Case("beat", lambda: alice.api("POST", f"{base}/presence/", {"tab": "a"}), 204),
            Case(
                "beat by token",
                lambda: anonymous.post(f"{base}/presence/", json={"tab": "b"}, headers=bot),
                204,
            ),
            Case("no tab", lambda: alice.api("POST", f"{base}/presence/", {}), 400, "'tab'"),
            Case(
                "anonymous",
                lambda: anonymous.post(f"{base}/presence/", json={"tab": "a"}),
                401,
                "Log in",
            ),
            Case(
                "private",
                lambda: bob.api("POST", f"/api/rooms/{private}/presence/", {"tab": "a"}),
                404,
                "no room",
            ),
            Case("method", lambda: alice.api("GET", f"{base}/presence/"), 405, "POST"),
            Case("second tab", lambda: alice.api("POST", f"{base}/presence/", {"tab": "b"}), 204),
            Case(
                "third tab",
                lambda: alice.api("POST", f"{base}/presence/", {"tab": "c"}),
                429,
                "open pages",
            ),
            Case("typing", lambda: alice.api("POST", f"{base}/typing/", {"after": 0}), 204),
            Case(
                "typing bad",
                lambda: alice.api("POST", f"{base}/typing/", {"after": "x"}),
                400,
                "'after'",
            ),
            Case("typing again", lambda: alice.api("POST", f"{base}/typing/", {}), 429, "typing"),
            Case(
                "typing anonymous",
                lambda: anonymous.post(f"{base}/typing/", json={}),
                401,
                "Log in",
            ),
            Case("read", lambda: alice.api("POST", f"{base}/read/", {}), 204),
            Case(
                "read bad",
                lambda: alice.api("POST", f"{base}/read/", {"up_to": -3}),
                400,
                "'up_to'",
            ),
            Case(
                "read private",
                lambda: bob.api("POST", f"/api/rooms/{private}/read/", {}),
                404,
                "no room",
            ),
            Case("read method", lambda: alice.api("GET", f"{base}/read/"), 405, "POST"),
        ]
    )


def test_member_removal_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous, private = (
        people["alice"],
        people["bob"],
        people["anonymous"],
        people["private"],
    )
    settings.CHAT_RATE_LIMITS = {"removal": (2, 100, 10.0)}
    carol = ChatAccount(alice.base_url, "carol")
    for name in ("bob", "carol"):
        assert alice.form(f"/rooms/{private}/invite/", username=name).status_code == 302
    public = alice.create_room("Open")
    members = f"/api/rooms/{private}/members"
    check(
        [
            Case(
                "anonymous",
                lambda: anonymous.delete(f"{members}/bob/"),
                401,
                "Log in",
                (("www-authenticate", "Bearer"),),
            ),
            Case(
                "bad token",
                lambda: anonymous.delete(f"{members}/bob/", headers=people["stale"]),
                401,
                "not valid",
            ),
            Case("CSRF", lambda: alice.client.delete(f"{members}/bob/"), 403, "CSRF"),
            Case("not owner", lambda: bob.api("DELETE", f"{members}/carol/"), 403, "owner"),
            Case("unknown room", lambda: alice.api("DELETE", "/api/rooms/x/members/bob/"), 404),
            Case(
                "not the owner's",
                lambda: alice.api("DELETE", "/api/rooms/lobby/members/bob/"),
                403,
                "owner",
            ),
            Case(
                "public room",
                lambda: alice.api("DELETE", f"/api/rooms/{public}/members/bob/"),
                400,
                "public room",
            ),
            Case("no member", lambda: alice.api("DELETE", f"{members}/mallory/"), 404, "mallory"),
            Case("the owner", lambda: alice.api("DELETE", f"{members}/alice/"), 400, "owner"),
            Case("method", lambda: alice.api("POST", f"{members}/bob/"), 405, "DELETE"),
            Case("removed", lambda: alice.api("DELETE", f"{members}/bob/"), 204),
            # Bob is out: to him, the room no longer exists.
            Case("gone", lambda: bob.api("DELETE", f"{members}/carol/"), 404, "no room"),
            Case("again", lambda: alice.api("DELETE", f"{members}/bob/"), 404, "bob"),
            Case("second", lambda: alice.api("DELETE", f"{members}/carol/"), 204),
            Case("rate", lambda: alice.api("DELETE", f"{members}/carol/"), 429, "removals"),
        ]
    )
    carol.close()


def test_direct_conversation_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous = people["alice"], people["bob"], people["anonymous"]
    settings.CHAT_RATE_LIMITS = {"direct": (1, 100, 60.0)}
    url = "/api/direct/"
    form = {"X-CSRFToken": alice.csrf_token, "Content-Type": JSON}
    check(
        [
            Case("anonymous", lambda: anonymous.post(url, json={"users": ["bob"]}), 401, "Log in"),
            Case("CSRF", lambda: alice.client.post(url, json={"users": ["bob"]}), 403, "CSRF"),
            Case("method", lambda: alice.api("GET", url), 405, "POST", (("allow", "POST"),)),
            Case("not JSON", lambda: alice.client.post(url, content=b"{", headers=form), 400),
            Case("nobody", lambda: alice.api("POST", url, {"users": ["zed"]}), 404, "zed"),
            Case("no users", lambda: alice.api("POST", url, {"users": ""}), 400, "Name"),
            Case("new", lambda: alice.api("POST", url, {"users": ["bob"]}), 201),
            Case(
                "by token",
                lambda: anonymous.post(url, json={"users": ["bob"]}, headers=people["bot"]),
                201,
            ),
            Case("exists", lambda: bob.api("POST", url, {"users": ["alice"]}), 200),
            Case("rate", lambda: alice.api("POST", url, {"users": ["bob"]}), 429, "direct"),
        ]
    )


def test_room_settings_and_members_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous, private = (
        people["alice"],
        people["bob"],
        people["anonymous"],
        people["private"],
    )
    room = f"/api/rooms/{private}/"
    members = f"{room}members/"
    check(
        [
            Case("anonymous", lambda: anonymous.get(room), 401, "Log in"),
            Case("outsider", lambda: bob.api("GET", room), 404, "no room"),
            Case("outsider writes", lambda: bob.api("PATCH", room, {"name": "x"}), 404),
            Case("read", lambda: alice.api("GET", room), 200),
            Case("CSRF", lambda: alice.client.patch(room, json={"topic": "x"}), 403, "CSRF"),
            Case("method", lambda: alice.api("POST", room, {}), 405, "GET or PATCH or DELETE"),
            Case("unknown", lambda: alice.api("PATCH", room, {"size": 3}), 400, "Unknown"),
            Case("renamed", lambda: alice.api("PATCH", room, {"name": "Q3"}), 200),
            Case("no heir", lambda: alice.api("PATCH", room, {"owner": "bob"}), 404, "member"),
            Case(
                "anonymous invite",
                lambda: anonymous.post(members, json={"username": "bob"}),
                401,
            ),
            Case("invited", lambda: alice.api("POST", members, {"username": "bob"}), 201),
            Case(
                "again",
                lambda: alice.api("POST", members, {"username": "bob"}),
                409,
                "already",
            ),
            Case("members", lambda: bob.api("GET", members), 200),
            Case("not owner", lambda: bob.api("PATCH", room, {"topic": "x"}), 403, "owner"),
            Case("members method", lambda: alice.api("PUT", members, {}), 405, "GET or POST"),
        ]
    )
    # Past the limits (each has been used once above).
    settings.CHAT_RATE_LIMITS = {"settings": (1, 100, 60.0), "membership": (1, 100, 10.0)}
    check(
        [
            Case(
                "invite rate",
                lambda: alice.api("POST", members, {"username": "zed"}),
                429,
                "invitations",
            ),
            Case(
                "settings rate",
                lambda: alice.api("PATCH", room, {"topic": "x"}),
                429,
                "settings",
            ),
        ]
    )
    settings.CHAT_RATE_LIMITS = {}
    check(
        [
            Case("handed", lambda: alice.api("PATCH", room, {"owner": "bob"}), 200),
            Case("not owner now", lambda: alice.api("DELETE", room), 403, "owner"),
            Case("deleted", lambda: bob.api("DELETE", room), 204),
            Case("gone", lambda: bob.api("GET", room), 404, "no room"),
        ]
    )


def test_profile_and_follow_statuses(people: dict[str, Any]) -> None:
    alice, anonymous = people["alice"], people["anonymous"]
    check(
        [
            Case("anonymous", lambda: anonymous.get("/api/me/"), 401, "Log in"),
            Case("read", lambda: alice.api("GET", "/api/me/"), 200),
            Case("by token", lambda: anonymous.get("/api/me/", headers=people["bot"]), 200),
            Case(
                "CSRF",
                lambda: alice.client.patch("/api/me/", json={"display_name": "A"}),
                403,
                "CSRF",
            ),
            Case(
                "bad",
                lambda: alice.api("PATCH", "/api/me/", {"display_name": []}),
                400,
                "display_name",
            ),
            Case("method", lambda: alice.api("DELETE", "/api/me/"), 405, "GET or PATCH"),
            Case("follow anonymous", lambda: anonymous.get("/api/follow/"), 401, "Log in"),
            Case(
                "follow position",
                lambda: alice.api("GET", "/api/follow/?last_event_id=x"),
                400,
                "last_event_id",
            ),
            Case("follow ids", lambda: alice.api("GET", "/api/follow/?follow=a"), 400, "follow"),
            Case("follow room", lambda: alice.api("GET", "/api/follow/?room=nowhere"), 404),
            Case("follow method", lambda: alice.api("POST", "/api/follow/", {}), 405, "GET"),
        ]
    )


def test_room_stream_statuses(people: dict[str, Any], settings: Any) -> None:
    alice, bob, anonymous, private = (
        people["alice"],
        people["bob"],
        people["anonymous"],
        people["private"],
    )

    def opened(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
        with client.stream("GET", url, **kwargs) as response:
            response.read() if response.status_code != 200 else None
            return response

    settings.PGSSE = {**settings.PGSSE, "MAX_STREAMS_PER_USER": 1}
    check(
        [
            Case("stream", lambda: opened(alice.client, "/rooms/lobby/events/"), 200),
            Case(
                "by token",
                lambda: opened(anonymous, "/rooms/lobby/events/", headers=people["bot"]),
                200,
            ),
            Case("own stream", lambda: opened(alice.client, "/events/me/"), 200),
            Case(
                "anonymous",
                lambda: opened(anonymous, "/rooms/lobby/events/"),
                401,
                "Log in",
                (("www-authenticate", "Bearer"),),
            ),
            Case("own, anonymous", lambda: opened(anonymous, "/events/me/"), 401, "Log in"),
            Case("own, method", lambda: alice.api("POST", "/events/me/"), 405, "GET"),
            Case(
                "own, bad token",
                lambda: opened(anonymous, "/events/me/", headers=people["stale"]),
                401,
                "not valid",
            ),
            Case(
                "bad token",
                lambda: opened(anonymous, "/rooms/lobby/events/", headers=people["stale"]),
                401,
                "not valid",
            ),
            Case("unknown", lambda: opened(alice.client, "/rooms/nowhere/events/"), 404, "nowhere"),
            Case(
                "private", lambda: opened(bob.client, f"/rooms/{private}/events/"), 404, "no room"
            ),
            Case(
                "method",
                lambda: alice.api("POST", "/rooms/lobby/events/"),
                405,
                "GET",
                (("allow", "GET"),),
            ),
        ]
    )
    # Past pgsse's per-user cap, token users included: 429 with Retry-After.
    with alice.client.stream("GET", "/rooms/lobby/events/") as first:
        assert first.status_code == 200
        check(
            [
                Case(
                    "second",
                    lambda: opened(alice.client, "/rooms/random/events/"),
                    429,
                    "You already have 1 stream open",
                )
            ]
        )
    with anonymous.stream("GET", "/rooms/lobby/events/", headers=people["bot"]) as first:
        assert first.status_code == 200
        check(
            [
                Case(
                    "bot's second",
                    lambda: opened(anonymous, "/rooms/random/events/", headers=people["bot"]),
                    429,
                    "You already have 1 stream open",
                )
            ]
        )


def test_a_users_own_channel_is_readable_by_that_user_only(server: LiveServer) -> None:
    """``user:<pk>`` carries what is one user's own. Its streams take the channel from
    the user asking, never from the request; and the hook refuses anyone else's."""
    from django.contrib.auth.models import AnonymousUser, User
    from django.test import RequestFactory

    from chat.own_channel import user_channel
    from chat.streams import may_read

    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    request = RequestFactory().get("/events/me/")
    users: list[tuple[User | AnonymousUser, bool]] = [
        (alice, True),
        (bob, False),
        (AnonymousUser(), False),
    ]
    for user, allowed in users:
        request.user = user
        assert may_read(request, user_channel(alice.pk)) is allowed, user


@pytest.fixture
def no_database(pg: Any) -> Any:
    """The chat served by a process whose database is unreachable (under DEBUG, as
    ``make run`` serves it): nothing listens on that port."""
    server = ServerProcess(
        uvicorn_command(),
        "postgresql://chat@127.0.0.1:9/chat?connect_timeout=2",
        DJANGO_DEBUG="1",
    )
    yield server.start()
    server.kill()
    server.log.close()


def test_a_database_outage_answers_json_503(no_database: ServerProcess) -> None:
    with httpx.Client(base_url=no_database.url, timeout=30) as client:
        client.cookies.set("sessionid", "somesession")
        client.cookies.set("csrftoken", "x" * 32)
        headers = {"X-CSRFToken": "x" * 32}
        bearer = {"Authorization": "Bearer some-token"}
        for response in [
            client.get("/api/rooms/lobby/messages/"),
            client.post("/api/rooms/lobby/messages/", json={"text": "hi"}, headers=headers),
            client.post("/api/rooms/", json={"name": "x"}, headers=bearer),
            client.post("/api/rooms/lobby/presence/", json={"tab": "a"}, headers=headers),
            client.get("/rooms/lobby/events/"),
            client.get("/rooms/lobby/events/", headers=bearer),
        ]:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.headers["content-type"] == JSON
            assert "database" in response.json()["error"]
            assert response.headers["retry-after"] == "5"
