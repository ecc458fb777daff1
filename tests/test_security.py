"""docs/security.md, point by point: each claim of the checklist is checked here.

The chat's views are driven through Django's real middleware with the test client (CSRF
checks enforced, as a browser meets them); streams through a real server.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from chat.models import Message, Room
from tests.chat_accounts import ChatAccount
from tests.servers import REPOSITORY, LiveServer

STATE_CHANGING = ("post", "put", "patch", "delete")
#: Writes open to visitors who are not logged in, on purpose (each with its reason).
ANONYMOUS_WRITES = {
    "accounts/signup/": "creating an account",
    "accounts/login/": "logging in",
    "accounts/logout/": "logging out is harmless",
    # Asking for a reset link (limited per address; says nothing of who has an account),
    # and setting the new password with the link's token (without it, nothing changes).
    "accounts/password_reset/": "asking for a password-reset e-mail",
    "accounts/reset/lobby/lobby/": "a reset link's token, checked by Django",
    # An open page of a visitor who is not logged in says it is still there: it counts
    # nobody (see chat.api.heartbeat) and writes no message.
    "api/rooms/lobby/presence/": "anonymous readers' pages",
    # The htmx recipe's public notice board (docs/htmx.md): anyone may post a note.
    "htmx/notes/": "the recipe's public board",
}


#: Sample values of path converters; any other parameter is "lobby".
SAMPLES = {"int": "1", "uuid": "00000000-0000-4000-8000-000000000001"}


def routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = ""
) -> Iterator[str]:
    """Every route of the chat project, with sample values in its parameters."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith("admin/"):
                continue  # Django's own admin: CSRF-protected by Django
            yield from routes(pattern.url_patterns, route)
        else:
            if pattern.name == "api_not_found":
                continue  # the JSON 404 of every other /api/ path: no view, nothing written
            yield re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLES.get(m[1], "lobby"), route)


@pytest.fixture
def lobby(transactional_db: None) -> Room:
    owner = User.objects.create_user("owner", password="x")
    room, _ = Room.objects.get_or_create(slug="lobby", defaults={"name": "Lobby"})
    Message.objects.create(room=room, author=owner, author_name="owner", text="first")
    return room


@pytest.mark.django_db(transaction=True)
def test_every_state_changing_request_needs_the_csrf_token(lobby: Room) -> None:
    user = User.objects.create_user("member", password="x")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    checked = 0
    for route in routes():
        for method in STATE_CHANGING:
            response = getattr(client, method)("/" + route)
            assert response.status_code in (403, 405), (method, route, response.status_code)
            if response.status_code == 403:
                assert b"CSRF" in response.content, (method, route)
                checked += 1
    assert checked >= 15  # the chat's forms and API, the recipe's board, the probes


@pytest.mark.django_db(transaction=True)
def test_writes_need_a_logged_in_user(lobby: Room) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    token = {"X-CSRFToken": client.cookies["csrftoken"].value}
    before = (Message.objects.count(), Room.objects.count())
    for route in routes():
        if route in ANONYMOUS_WRITES:
            continue
        for method in STATE_CHANGING:
            response = getattr(client, method)("/" + route, headers=token)
            refused = response.status_code in (401, 403, 404, 405) or (
                response.status_code == 302 and "/accounts/login/" in response["Location"]
            )
            assert refused, (method, route, response.status_code)
    assert (Message.objects.count(), Room.objects.count()) == before


def test_streams_are_authorized_per_channel(server: LiveServer) -> None:
    alice = ChatAccount(server.url, "alice")
    bob = ChatAccount(server.url, "bob")
    private = alice.create_room("alice only", private=True)
    path = f"/rooms/{private}/events/"

    def stream_status(cookies: httpx.Cookies | None) -> int:
        with (
            httpx.Client(base_url=server.url, cookies=cookies, timeout=10) as client,
            client.stream("GET", path) as response,
        ):
            return response.status_code

    assert stream_status(alice.client.cookies) == 200
    # The chat answers 404 for a private room one may not see (it never confirms one).
    assert stream_status(bob.client.cookies) == 404
    assert stream_status(None) in (302, 401, 403)
    alice.close()
    bob.close()


@pytest.mark.django_db(transaction=True)
def test_posting_is_rate_limited(lobby: Room) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("chatty", password="x"))
    client.get("/")
    token = client.cookies["csrftoken"].value
    statuses = [
        client.post(
            "/api/rooms/lobby/messages/", {"text": f"m{n}"}, headers={"X-CSRFToken": token}
        ).status_code
        for n in range(11)
    ]
    assert statuses == [201] * 10 + [429]
    refused = client.post(
        "/api/rooms/lobby/messages/", {"text": "again"}, headers={"X-CSRFToken": token}
    )
    assert int(refused["Retry-After"]) >= 1


# -- no SQL built from strings -------------------------------------------------------

SQL_CALLS = {"execute", "executemany", "raw", "extra", "RawSQL", "mogrify"}


def _dynamic(node: ast.expr, constants: dict[str, ast.expr]) -> bool:
    """Whether ``node`` builds a string at run time (f-string, %, +, .format, .join)."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        # "...".format() or "...".join(): strings; sql.SQL(...).format() is psycopg's safe
        # composition (identifiers quoted by sql.Identifier).
        return node.func.attr in ("format", "join") and isinstance(node.func.value, ast.Constant)
    if isinstance(node, ast.Name) and node.id in constants:
        return _dynamic(constants[node.id], {})
    return False


def string_built_sql(source: str) -> list[int]:
    """Lines where SQL is built from strings: an SQL call given a built string, or an
    ``*_SQL`` constant that is one."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in SQL_CALLS and _dynamic(node.args[0], constants):
                found.append(node.lineno)
        elif (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id.upper().endswith("SQL") for t in node.targets)
            and _dynamic(node.value, {})
        ):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize(
    "bad",
    [
        "cursor.execute(f\"SELECT * FROM t WHERE name = '{name}'\")",
        "cursor.execute(\"SELECT * FROM t WHERE name = '%s'\" % name)",
        'cursor.execute("SELECT * FROM t WHERE name = " + name)',
        'cursor.execute("SELECT * FROM {}".format(table))',
        'query = f"DELETE FROM {table}"\ncursor.execute(query)',
        'DELETE_SQL = "DELETE FROM %s" % table',
        'Model.objects.raw(f"SELECT * FROM t WHERE id = {pk}")',
        'await conn.execute(" ".join(parts))',
    ],
)
def test_the_scan_finds_sql_built_from_strings(bad: str) -> None:
    assert string_built_sql(bad)


@pytest.mark.parametrize(
    "good",
    [
        'cursor.execute("SELECT * FROM t WHERE name = %s", (name,))',
        "cursor.execute(APPEND_SQL, params)",
        'conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))',
        'conn.execute(sql.SQL("; ").join(statements))',
    ],
)
def test_the_scan_lets_parameterized_sql_through(good: str) -> None:
    assert string_built_sql(good) == []


def test_no_sql_is_built_from_strings_in_pgsse_or_the_demo() -> None:
    files = [
        path
        for folder in ("src/pgsse", "demo")
        for path in (REPOSITORY / folder).rglob("*.py")
        if "migrations" not in path.parts
    ]
    assert len(files) > 40
    found = {
        str(path.relative_to(REPOSITORY)): lines
        for path in files
        if (lines := string_built_sql(path.read_text()))
    }
    assert found == {}


# -- XSS-safe rendering ---------------------------------------------------------------

TEMPLATES = [
    *REPOSITORY.glob("demo/*/templates/**/*.html"),
    *REPOSITORY.glob("src/pgsse/templates/**/*.html"),
]
#: Marked safe on purpose: Django's own password help texts (HTML written by Django).
SAFE_ALLOWED = {
    "registration/signup.html": "field.help_text|safe",
    "chat/account/password_reset_confirm.html": "field.help_text|safe",
    "chat/account/password_change_form.html": "field.help_text|safe",
}
SCRIPTS = [
    *REPOSITORY.glob("demo/chat/static/chat/*.js"),
    REPOSITORY / "src/pgsse/static/pgsse/pgsse.js",
    *REPOSITORY.glob("demo/htmx_recipe/static/htmx_recipe/*.js"),
]


def test_templates_escape_everything_users_write() -> None:
    assert TEMPLATES
    for template in TEMPLATES:
        text = template.read_text()
        assert "autoescape off" not in text, template
        for found in re.findall(r"\{\{[^}]*\|\s*safe[^}]*\}\}", text):
            name = str(template).split("/templates/", 1)[1]
            assert SAFE_ALLOWED.get(name, "") in found.replace(" ", ""), (template, found)


def test_scripts_never_parse_text_as_html() -> None:
    html_sinks = re.compile(r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML\(|document\.write")
    for script in SCRIPTS:
        assert not html_sinks.search(script.read_text()), script


@pytest.mark.django_db(transaction=True)
def test_a_message_full_of_html_is_shown_as_text(lobby: Room) -> None:
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    user = User.objects.create_user("mallory", password="x")
    Message.objects.create(room=lobby, author=user, author_name="mallory", text=attack)
    client = Client()
    client.force_login(user)
    page = client.get("/rooms/lobby/").content.decode()
    assert attack not in page
    assert "<img src=x" not in page
    # The history travels as JSON in a json_script block (every <, >, & escaped), which
    # chat.js turns into text nodes.
    assert r"\u003Cscript\u003Ealert(\"x\")\u003C/script\u003E" in page


# -- secrets from the environment -------------------------------------------------------


def test_settings_refuse_to_run_without_a_secret_key_outside_development() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPOSITORY / p) for p in ("demo", "src")),
        "DJANGO_DEBUG": "",
        "DJANGO_SECRET_KEY": "",
        "DATABASE_URL": "postgresql://nobody@localhost/unused",
    }
    done = subprocess.run(
        [sys.executable, "-c", "import chatsite.settings"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in done.stderr


def test_no_settings_module_holds_a_production_secret() -> None:
    for path in (REPOSITORY / "demo/chatsite").glob("*.py"):
        for line in path.read_text().splitlines():
            if re.match(r"\s*(SECRET_KEY|METRICS_TOKEN|PASSWORD)\s*=\s*['\"]", line):
                assert "development-only" in line, (path, line)


def _security_doc() -> str:
    return (REPOSITORY / "docs/security.md").read_text()


def test_every_checklist_point_names_its_test() -> None:
    doc = _security_doc()
    points = re.findall(r"^- \*\*(.+?)\*\*(.*?)(?=^- \*\*|\Z)", doc, re.MULTILINE | re.DOTALL)
    assert len(points) >= 8
    for title, body in points:
        tests = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", body)
        assert tests, f"{title}: no test named"
        for file, name in tests:
            assert f"def {name}(" in (REPOSITORY / file).read_text(), (title, file, name)
