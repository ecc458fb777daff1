"""Bad input gets a 4xx JSON answer saying what is accepted, never a 500: the known
triggers one by one, then arbitrary JSON and bytes thrown at every API endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.models import Message, RateHit, Room
from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

JSON = "application/json"
#: Values PostgreSQL or Python's own limits used to turn into 500s.
TRIGGERS = {
    "NUL": '"a\\u0000b"',
    "lone surrogate": '"\\ud800"',
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "5,000-digit integer": "1" * 5000,
}


def send_raw(account: ChatAccount, method: str, path: str, body: bytes, content_type: str) -> Any:
    return account.client.request(
        method,
        path,
        content=body,
        headers={"Content-Type": content_type, "X-CSRFToken": account.csrf_token},
    )


def assert_json_refusal(response: Any, what: str) -> None:
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"] == JSON, (what, response.text[:300])
    assert response.json()["error"], what


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_known_triggers_are_refused_with_json_400(server: LiveServer, trigger: str) -> None:
    alice = ChatAccount(server.url, "alice")
    mine = alice.say("lobby", "mine")["id"]
    value = TRIGGERS[trigger]
    where = [
        ("POST", "/api/rooms/lobby/messages/", '{"text": %s}'),
        ("PATCH", f"/api/rooms/lobby/messages/{mine}/", '{"text": %s}'),
        ("POST", "/api/rooms/", '{"name": %s}'),
        ("POST", "/api/rooms/lobby/presence/", '{"tab": %s}'),
        ("POST", "/api/rooms/lobby/typing/", '{"after": %s}'),
        ("POST", "/api/rooms/lobby/read/", '{"up_to": %s}'),
        ("POST", "/api/rooms/lobby/messages/", "%s"),
    ]
    for method, path, template in where:
        body = (template % value).encode()
        response = send_raw(alice, method, path, body, JSON)
        assert response.status_code == 400, (trigger, path, response.text[:300])
        assert_json_refusal(response, f"{trigger} at {path}")
    assert list(Message.objects.values_list("text", flat=True)) == ["mine"]
    alice.close()


def test_nul_characters_in_forms_are_refused(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    response = alice.post("lobby", "a\x00b")  # the page's form post of a message
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]
    # The page's form for a new room, and the owner's invite form: a notice, not a 500.
    created = alice.form("/rooms/new/", name="bad\x00name")
    assert created.status_code == 302
    slug = alice.create_room("Mine")
    invited = alice.form(f"/rooms/{slug}/invite/", username="bo\x00b")
    assert invited.status_code == 302
    page = alice.client.get(invited.headers["location"])
    assert "cannot contain NUL" in page.text
    assert list(Room.objects.order_by("slug").values_list("slug", flat=True)) == [
        "lobby",
        "mine",
        "random",
    ]
    alice.close()


def test_nul_characters_in_query_parameters_are_refused(server: LiveServer) -> None:
    """Every query parameter of every GET endpoint: 400 or an answer, never a 500 (a NUL
    reaching PostgreSQL in a text parameter is a database error)."""
    alice = ChatAccount(server.url, "alice")
    own = alice.create_room("Mine", private=True)
    names = ["before", "after", "around", "limit", "room", "from", "follow", "last_event_id"]
    names += ["q", "prefix"]
    for path in [
        "/api/rooms/lobby/messages/",
        "/api/rooms/",
        f"/api/rooms/{own}/",
        f"/api/rooms/{own}/members/",
        "/api/me/",
        "/api/follow/",
        "/api/search/",
        "/api/unread/",
        "/api/rooms/lobby/people/",
    ]:
        for name in names:
            response = alice.client.get(path, params={name: "lob\x00by"})
            assert response.status_code in (200, 400, 404), (path, name, response.text[:300])
            if response.status_code != 200:
                assert_json_refusal(response, f"{path}?{name}")
    # And in the path's free-text parts (a username, an emoji).
    mine = alice.say("lobby", "mine")["id"]
    for method, path in [
        ("DELETE", "/api/rooms/lobby/members/bo%00b/"),
        ("PUT", f"/api/rooms/lobby/messages/{mine}/reactions/%00/"),
        ("DELETE", f"/api/rooms/lobby/messages/{mine}/reactions/%00/"),
    ]:
        response = send_raw(alice, method, path, b"", JSON)
        assert 400 <= response.status_code < 500, (method, path, response.text[:300])
        assert_json_refusal(response, f"{method} {path}")
    alice.close()


def test_multipart_bodies_without_a_boundary_are_refused_with_json_400(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    mine = alice.say("lobby", "mine")["id"]
    for method, path in [
        ("POST", "/api/rooms/lobby/messages/"),
        ("POST", "/rooms/lobby/messages/"),  # the page's form post
        ("PATCH", f"/api/rooms/lobby/messages/{mine}/"),
        ("POST", "/api/rooms/"),
        ("POST", "/api/rooms/lobby/presence/"),
    ]:
        response = send_raw(alice, method, path, b"--x\r\ntext\r\n--x--", "multipart/form-data")
        assert response.status_code == 400, (path, response.text[:300])
        assert_json_refusal(response, path)
        if method == "POST":  # Django parses form bodies of POSTs only
            assert "boundary" in response.json()["error"], path
    assert list(Message.objects.values_list("text", flat=True)) == ["mine"]
    alice.close()


def test_a_username_longer_than_any_account_is_refused_by_the_form(server: LiveServer) -> None:
    """django-axes records every failed log-in, its username in 255 characters: one of 256
    is a failed log-in like any other, on the chat's page and on the admin's."""
    from axes.models import AccessAttempt

    ChatAccount(server.url, "alice").close()
    long_name = "u" * 256
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for page in ("/accounts/login/", "/admin/login/"):
            client.get(page).raise_for_status()
            response = client.post(
                page,
                data={"username": long_name, "password": "not-the-password"},
                headers={"X-CSRFToken": client.cookies["csrftoken"]},
            )
            assert response.status_code == 200, (page, response.status_code)
            assert "correct username and password" in response.text, page
    recorded = list(AccessAttempt.objects.values_list("username", flat=True))
    assert recorded == [long_name[:150]]  # one attempt row, two failures counted on it
    assert AccessAttempt.objects.get().failures_since_start == 2


def test_a_forwarded_address_that_is_no_address_is_refused_with_400(server: LiveServer) -> None:
    """The test server trusts X-Forwarded-For from 127.0.0.1, as uvicorn does by default: a
    proxy forwarding what is no address gets a 400 that says so, on every kind of page; a
    long chain of real addresses is served, keyed on its last one."""
    alice = ChatAccount(server.url, "alice")
    not_an_address = "x" * 250
    for method, path, kind in [
        ("POST", "/accounts/login/", "text/plain"),
        ("GET", "/rooms/lobby/", "text/plain"),
        ("POST", "/api/rooms/lobby/messages/", JSON),
        ("GET", "/rooms/lobby/events/", "text/plain"),
    ]:
        response = alice.client.request(
            method,
            path,
            json={"text": "hi"} if method == "POST" else None,
            headers={"X-Forwarded-For": not_an_address, "X-CSRFToken": alice.csrf_token},
        )
        assert response.status_code == 400, (path, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith(kind), (path, response.headers)
        assert "X-Forwarded-For" in response.text
        assert "is not an IP address" in response.text
    chain = ", ".join(f"203.0.113.{n}" for n in range(1, 40))
    assert len(chain) > 200
    response = alice.client.post(
        "/api/rooms/lobby/messages/",
        json={"text": "through the proxy"},
        headers={"X-Forwarded-For": chain, "X-CSRFToken": alice.csrf_token},
    )
    assert response.status_code == 201, response.text
    assert RateHit.objects.filter(key="message:address:203.0.113.39").count() == 1
    assert list(Message.objects.values_list("text", flat=True)) == ["through the proxy"]
    alice.close()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "text",
        "name",
        "private",
        "tab",
        "leave",
        "after",
        "up_to",
        "topic",
        "owner",
        "username",
        "users",
        "display_name",
    ]
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: (json.dumps(value).encode(), JSON)),
    st.dictionaries(FIELDS, JSON_VALUES, max_size=4).map(
        lambda value: (json.dumps(value).encode(), JSON)
    ),
    st.tuples(
        st.binary(max_size=300),
        st.sampled_from(
            [
                JSON,
                "application/x-www-form-urlencoded",
                "text/plain",
                "",
                "multipart/form-data",  # no boundary
                "multipart/form-data; boundary=b",
            ]
        ),
    ),
)
ENDPOINTS = st.sampled_from(
    [
        ("POST", "/api/rooms/"),
        ("GET", "/api/rooms/lobby/messages/"),
        ("POST", "/api/rooms/lobby/messages/"),
        ("POST", "/rooms/lobby/messages/"),
        ("PATCH", "/api/rooms/lobby/messages/{mine}/"),
        ("DELETE", "/api/rooms/lobby/messages/{other}/"),
        ("POST", "/api/rooms/lobby/presence/"),
        ("POST", "/api/rooms/lobby/typing/"),
        ("POST", "/api/rooms/lobby/read/"),
        ("DELETE", "/api/rooms/lobby/members/bob/"),
        ("PUT", "/api/rooms/lobby/messages/"),
        ("GET", "/api/rooms/"),
        ("GET", "/api/rooms/{own}/"),
        ("PATCH", "/api/rooms/{own}/"),
        ("GET", "/api/rooms/{own}/members/"),
        ("POST", "/api/rooms/{own}/members/"),
        ("POST", "/api/direct/"),
        ("GET", "/api/me/"),
        ("PATCH", "/api/me/"),
        ("GET", "/api/follow/"),
    ]
)


@pytest.fixture
def fuzzed(server: LiveServer, settings: Any) -> Iterator[dict[str, Any]]:
    # Thrown as fast as a test can: rate limits would answer 429 before parsing.
    settings.CHAT_RATE_LIMITS = {
        action: (1_000_000, 1_000_000, 1.0)
        for action in (
            "message",
            "edit",
            "room",
            "presence",
            "typing",
            "read",
            "removal",
            "membership",
            "direct",
            "settings",
            "profile",
        )
    }
    settings.CHAT_PRESENCE_MAX_TABS = 1_000_000
    alice = ChatAccount(server.url, "alice")
    ids = {
        "mine": alice.say("lobby", "mine")["id"],
        "other": alice.say("lobby", "x")["id"],
        "own": alice.create_room("Fuzzed", private=True),
    }
    out = StringIO()
    call_command("chat_token", "alice", stdout=out)
    with httpx.Client(base_url=server.url, timeout=30) as bot:
        yield {"alice": alice, "bot": bot, "token": out.getvalue().strip(), **ids}
    alice.close()


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(endpoint=ENDPOINTS, body=BODIES, query=st.text(max_size=30), by_token=st.booleans())
def test_arbitrary_bodies_get_2xx_or_a_4xx_json_answer(
    fuzzed: dict[str, Any],
    endpoint: tuple[str, str],
    body: tuple[bytes, str],
    query: str,
    by_token: bool,
) -> None:
    method, path = endpoint
    path = path.format(mine=fuzzed["mine"], other=fuzzed["other"], own=fuzzed["own"])
    content, content_type = body
    headers = {"Content-Type": content_type}
    if by_token:
        headers["Authorization"] = f"Bearer {fuzzed['token']}"
    else:
        headers["X-CSRFToken"] = fuzzed["alice"].csrf_token
    client = fuzzed["bot"] if by_token else fuzzed["alice"].client
    response = client.request(
        method,
        path,
        params=(
            {
                "before": query,
                "limit": query,
                "room": query,
                "from": query,
                "follow": query,
                "last_event_id": query,
            }
            if method == "GET"
            else None
        ),
        content=content,
        headers=headers,
    )
    if response.status_code < 300:
        assert response.status_code in (200, 201, 204), response.text[:300]
        if response.status_code != 204:
            assert response.headers["content-type"] == JSON
            assert isinstance(response.json(), dict)
    else:
        assert_json_refusal(response, f"{method} {path} {content[:80]!r}")


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(["/rooms/lobby/events/", "/events/me/", "/rooms/nowhere/events/"]),
    position=st.text(max_size=60),
    in_header=st.booleans(),
)
def test_streams_opened_with_arbitrary_positions_stream_or_refuse_in_json(
    fuzzed: dict[str, Any], path: str, position: str, in_header: bool
) -> None:
    client = fuzzed["alice"].client
    headers = {"Accept": "text/event-stream"}
    params = {}
    if in_header:
        # Any bytes a header value may carry (RFC 9110: no control characters, and no
        # whitespace at either end); the server refuses others before the chat sees them.
        controls = bytes([*range(0x20), 0x7F])
        raw = position.encode("utf-8", "surrogatepass").translate(None, controls).strip()
        headers["Last-Event-ID"] = raw  # type: ignore[assignment]
    else:
        params["last_event_id"] = position
    with client.stream("GET", path, params=params, headers=headers) as response:
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("text/event-stream")
        else:
            response.read()
            assert_json_refusal(response, f"{path} {position!r}")
