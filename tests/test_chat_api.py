"""The chat's accounts, rooms and JSON API over real HTTP: real uvicorn, real PostgreSQL."""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from chat.models import ApiToken, Membership, Message, Room
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    message: str = response.json()["error"]
    assert message
    return message


def test_signup_applies_django_password_validation(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/signup/").raise_for_status()
        token = client.cookies["csrftoken"]
        weak = {"username": "alice", "password1": "12345678", "password2": "12345678"}
        response = client.post("/accounts/signup/", data=weak, headers={"X-CSRFToken": token})
        assert response.status_code == 200
        assert "too common" in response.text
        assert "entirely numeric" in response.text
        assert not User.objects.filter(username="alice").exists()
        # Without the CSRF token, nothing is created either.
        strong = {"username": "alice", "password1": PASSWORD, "password2": PASSWORD}
        assert client.post("/accounts/signup/", data=strong).status_code == 403
        assert not User.objects.filter(username="alice").exists()
    alice = ChatAccount(server.url, "alice")
    assert User.objects.get(username="alice").check_password(PASSWORD)
    # Logged in at once: the room page renders with the composer.
    page = alice.client.get("/rooms/lobby/")
    assert page.status_code == 200
    assert 'id="composer"' in page.text
    alice.close()
    again = ChatAccount(server.url, "alice", signup=False)
    assert again.client.get("/rooms/lobby/").status_code == 200
    again.close()


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/rooms/random/", "/rooms/random/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
)
def test_signup_goes_on_to_pages_of_this_site_only(
    server: LiveServer, next_url: str, lands_on: str
) -> None:
    with httpx.Client(base_url=server.url) as client:
        client.get("/accounts/signup/").raise_for_status()
        form = {"username": "alice", "password1": PASSWORD, "password2": PASSWORD}
        response = client.post(
            "/accounts/signup/",
            data={**form, "next": next_url},
            headers={"X-CSRFToken": client.cookies["csrftoken"]},
        )
        assert response.status_code == 302
        assert response.headers["location"] == lands_on


def test_anonymous_visitors_must_log_in_by_default(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/rooms/lobby/")
        assert page.status_code == 302
        assert page.headers["location"].startswith("/accounts/login/?next=/rooms/lobby/")
        assert client.get("/").status_code == 302
        stream = client.get("/rooms/lobby/events/")
        assert stream.status_code == 401
        assert "Log in" in error_of(stream)
        assert client.get("/api/rooms/lobby/messages/").status_code == 401
        response = client.post("/api/rooms/lobby/messages/", json={"text": "hi"})
        assert response.status_code == 401
        assert "Log in" in error_of(response)


def test_anonymous_read_setting_opens_public_rooms_only(server: LiveServer, settings: Any) -> None:
    settings.CHAT_ANONYMOUS_READ = True
    alice = ChatAccount(server.url, "alice")
    secret = alice.create_room("Secret", private=True)
    alice.say("lobby", "hello readers")
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/rooms/lobby/")
        assert page.status_code == 200
        assert "hello readers" in page.text
        assert 'id="composer"' not in page.text
        history = client.get("/api/rooms/lobby/messages/").json()
        assert [m["text"] for m in history["messages"]] == ["hello readers"]
        with client.stream("GET", "/rooms/lobby/events/") as stream:
            assert stream.status_code == 200
        # Reading is not writing, and private rooms stay private.
        assert client.post("/api/rooms/lobby/messages/", json={"text": "x"}).status_code == 401
        assert client.get(f"/rooms/{secret}/").status_code == 302
        assert client.get(f"/rooms/{secret}/events/").status_code == 404
        assert client.get(f"/api/rooms/{secret}/messages/").status_code == 404
    alice.close()


def test_posting_returns_the_message_with_its_author_from_the_session(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    response = alice.api("POST", "/api/rooms/lobby/messages/", {"text": "hi", "user": "bob"})
    assert response.status_code == 201
    data = response.json()
    assert set(data) >= {"id", "room", "user", "text", "created_at"}
    assert (data["room"], data["user"], data["text"]) == ("lobby", "alice", "hi")
    stored = Message.objects.get(id=data["id"])
    assert stored.author == User.objects.get(username="alice")
    # Posting in a public room joins it.
    assert Membership.objects.filter(room__slug="lobby", user=stored.author).exists()
    alice.close()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"text": ""}, 400, "empty"),
        ({"text": " \n\t "}, 400, "empty"),
        ({"text": 42}, 400, '{"text"'),
        ({"message": "hi"}, 400, '{"text"'),
        ({"text": "x" * 4001}, 413, "4000"),
        (["not", "an", "object"], 400, "JSON object"),
    ],
)
def test_invalid_messages_are_refused_with_json_errors(
    server: LiveServer, body: Any, status: int, says: str
) -> None:
    alice = ChatAccount(server.url, "alice")
    response = alice.api("POST", "/api/rooms/lobby/messages/", body)
    assert response.status_code == status
    assert says in error_of(response)
    assert not Message.objects.exists()
    alice.close()


def test_api_errors_for_json_room_csrf_and_method(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    assert alice.api("POST", "/api/rooms/lobby/messages/", {"text": "x" * 4000}).status_code == 201
    broken = alice.client.post(
        "/api/rooms/lobby/messages/",
        content=b"{not json",
        headers={"Content-Type": "application/json", "X-CSRFToken": alice.csrf_token},
    )
    assert broken.status_code == 400
    assert "not valid JSON" in error_of(broken)
    # Far beyond the limit, past Django's request body limit: still a JSON 413.
    huge = alice.api("POST", "/api/rooms/lobby/messages/", {"text": "x" * 3_000_000})
    assert huge.status_code == 413
    assert "4000" in error_of(huge)
    missing = alice.api("POST", "/api/rooms/nowhere/messages/", {"text": "hi"})
    assert missing.status_code == 404
    assert "nowhere" in error_of(missing)
    # A session without the CSRF header may not write: a JSON 403, nothing stored.
    forged = alice.client.post("/api/rooms/lobby/messages/", json={"text": "forged"})
    assert forged.status_code == 403
    assert "CSRF" in error_of(forged)
    assert not Message.objects.filter(text="forged").exists()
    wrong_method = alice.api("PUT", "/api/rooms/lobby/messages/", {"text": "hi"})
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)
    alice.close()


def test_rate_limit_answers_429_with_retry_after(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    bob = ChatAccount(server.url, "bob")
    for n in range(10):
        alice.say("lobby", f"message {n}")
    refused = alice.post("random", "one too many")
    assert refused.status_code == 429
    assert "at most 10 every 10 seconds" in error_of(refused)
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert not Message.objects.filter(text="one too many").exists()
    # The limit is per user.
    assert bob.post("lobby", "bob is fine").status_code == 201
    alice.close()
    bob.close()


def test_chat_token_command_creates_the_user_and_the_token_authenticates(
    server: LiveServer,
) -> None:
    out = StringIO()
    call_command("chat_token", "bot", stdout=out, stderr=StringIO())
    token = out.getvalue().strip()
    assert User.objects.get(username="bot").has_usable_password() is False
    with httpx.Client(base_url=server.url) as client:
        headers = {"Authorization": f"Bearer {token}"}
        response = client.post("/api/rooms/lobby/messages/", json={"text": "beep"}, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["user"] == "bot"
        with client.stream("GET", "/rooms/lobby/events/", headers=headers) as stream:
            assert stream.status_code == 200
        history = client.get("/api/rooms/lobby/messages/", headers=headers)
        assert [m["text"] for m in history.json()["messages"]] == ["beep"]
        created = client.post("/api/rooms/", json={"name": "Bots only"}, headers=headers)
        assert created.status_code == 201
        assert created.json()["slug"] == "bots-only"
        # A second run rotates the token: the old one stops working.
        call_command("chat_token", "bot", stdout=StringIO())
        old = client.post("/api/rooms/lobby/messages/", json={"text": "x"}, headers=headers)
        assert old.status_code == 401
        assert old.headers["www-authenticate"] == "Bearer"
        with client.stream("GET", "/rooms/lobby/events/", headers=headers) as stream:
            assert stream.status_code == 401
            assert stream.headers["www-authenticate"] == "Bearer"
        bad = client.post(
            "/api/rooms/lobby/messages/", json={"text": "x"}, headers={"Authorization": "Basic x"}
        )
        assert bad.status_code == 401
        assert "Bearer" in error_of(bad)
    assert ApiToken.objects.count() == 1


def test_creating_rooms(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    response = alice.api("POST", "/api/rooms/", {"name": "  Été 2026 ", "private": False})
    assert response.status_code == 201
    assert response.json() == {
        "slug": "ete-2026",
        "name": "Été 2026",
        "private": False,
        "url": "/rooms/ete-2026/",
    }
    room = Room.objects.get(slug="ete-2026")
    assert room.owner == User.objects.get(username="alice")
    assert list(room.members.values_list("username", flat=True)) == ["alice"]
    for body, says in [
        ({"name": "ETE 2026"}, "exists already"),
        ({"name": "!!!"}, "letter or digit"),
        ({"name": ""}, "needs a name"),
        ({"name": "x" * 81}, "at most 80"),
        ({"name": "new"}, "reserved"),
        ({"name": "ok", "private": "yes"}, "true or false"),
    ]:
        refused = alice.api("POST", "/api/rooms/", body)
        assert refused.status_code == 400, body
        assert says in error_of(refused)
    # A private room's slug ends with random characters: nobody guesses it from its name.
    private = alice.api("POST", "/api/rooms/", {"name": "Été 2026", "private": True}).json()
    assert re.fullmatch(r"ete-2026-[a-z2-9]{8}", private["slug"])
    assert private["url"] == f"/rooms/{private['slug']}/"
    alice.close()


def test_private_room_is_refused_to_non_members_until_invited(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    bob = ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    alice.say(slug, "secret plan")
    # To a non-member, a private room looks exactly like a room that does not exist.
    assert bob.client.get(f"/rooms/{slug}/").status_code == 404
    with bob.client.stream("GET", f"/rooms/{slug}/events/") as stream:
        assert stream.status_code == 404
    history = bob.api("GET", f"/api/rooms/{slug}/messages/")
    assert history.status_code == 404
    assert "secret plan" not in history.text
    assert bob.post(slug, "let me in").status_code == 404
    assert bob.form(f"/rooms/{slug}/join/").status_code == 404
    assert bob.client.get(f"/rooms/{slug}/").status_code == 404  # joining needs an invite
    assert slug not in bob.client.get("/").text  # not even listed
    # Only the owner invites.
    assert bob.form(f"/rooms/{slug}/invite/", username="bob").status_code == 404
    assert bob.client.get(f"/rooms/{slug}/").status_code == 404
    alice.form(f"/rooms/{slug}/invite/", username="bob")
    assert "secret plan" in bob.client.get(f"/rooms/{slug}/").text
    with bob.client.stream("GET", f"/rooms/{slug}/events/") as stream:
        assert stream.status_code == 200
    assert bob.post(slug, "thanks").status_code == 201
    # Leaving a private room gives the access up.
    bob.form(f"/rooms/{slug}/leave/")
    assert bob.client.get(f"/rooms/{slug}/").status_code == 404
    alice.close()
    bob.close()


def test_only_authors_edit_and_authors_or_room_owners_delete(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    bob = ChatAccount(server.url, "bob")
    carol = ChatAccount(server.url, "carol")
    slug = alice.create_room("Alice's room")
    by_bob = bob.say(slug, "bob's words")
    by_carol = carol.say(slug, "carol's words")
    url = f"/api/rooms/{slug}/messages/{by_bob['id']}/"
    assert alice.api("PATCH", url, {"text": "alice rewrites"}).status_code == 403
    assert carol.api("PATCH", url, {"text": "carol rewrites"}).status_code == 403
    edited = bob.api("PATCH", url, {"text": "bob's better words"})
    assert edited.status_code == 200
    assert edited.json()["text"] == "bob's better words"
    assert edited.json()["edited_at"] is not None
    assert bob.api("PATCH", url, {"text": "  "}).status_code == 400
    # Carol may not delete Bob's message; Bob may delete Carol's? No. Alice owns the room.
    assert carol.api("DELETE", url).status_code == 403
    carol_url = f"/api/rooms/{slug}/messages/{by_carol['id']}/"
    assert bob.api("DELETE", carol_url).status_code == 403
    assert alice.api("DELETE", carol_url).status_code == 204
    assert bob.api("DELETE", url).status_code == 204
    assert bob.api("DELETE", url).status_code == 404
    assert not Message.objects.filter(room__slug=slug).exists()
    for user in (alice, bob, carol):
        user.close()


def test_history_pages_by_id(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"message": (1000, 1000, 10.0)}
    alice = ChatAccount(server.url, "alice")
    posted = [alice.say("lobby", f"m{n}")["id"] for n in range(120)]
    page = alice.client.get("/rooms/lobby/")
    start = page.text.index('id="chat-history"')
    rendered = json.loads(
        page.text[page.text.index(">", start) + 1 : page.text.index("</script>", start)]
    )
    assert [m["id"] for m in rendered] == posted[-50:]
    seen = [m["id"] for m in rendered]
    before, pages = seen[0], 0
    while True:
        body = alice.api("GET", f"/api/rooms/lobby/messages/?before={before}").json()
        seen = [m["id"] for m in body["messages"]] + seen
        pages += 1
        if not body["has_more"]:
            break
        before = body["messages"][0]["id"]
    assert seen == posted
    assert pages == 2
    assert alice.api("GET", "/api/rooms/lobby/messages/?limit=0").status_code == 400
    assert alice.api("GET", "/api/rooms/lobby/messages/?before=x").status_code == 400
    alice.close()
