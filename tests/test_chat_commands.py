"""The commands README and docs/chat.md show, run as written in a shell, as a newcomer would
after ``make run``: no DJANGO_SECRET_KEY, no DJANGO_DEBUG, the database in ``.pgdata/``.

The only change made to them is the address: the served chat is a test server, and the
database the test database (an embedded server under ``.pgdata/`` like ``make run``'s).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import User

from chat.models import Message
from chatsite.embedded_db import is_embedded
from tests.postgres import Postgres
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

REPOSITORY = Path(__file__).resolve().parent.parent
DOCUMENTED_ADDRESS = "http://127.0.0.1:8000"


def newcomer_environment(pg: Postgres) -> dict[str, str]:
    """The environment of a shell on a fresh clone: nothing of the chat's set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CHAT_", "PYTEST", "PGSSE"))
    }
    return {**env, "DATABASE_URL": pg.url}


def shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.fixture
def embedded(pg: Postgres) -> Postgres:
    if not is_embedded(pg.url):
        pytest.fail(
            "These tests reproduce `make run`'s setting (the embedded database); "
            "run them without DATABASE_URL."
        )
    return pg


def test_the_bot_example_of_docs_chat_runs_as_written(
    server: LiveServer, embedded: Postgres
) -> None:
    (block,) = [b for b in shell_blocks(REPOSITORY / "docs" / "chat.md") if "chat_token" in b]
    lines = block.replace(DOCUMENTED_ADDRESS, server.url).strip().splitlines()
    # The last command follows the stream, which never ends by itself: give it 3 seconds.
    assert lines[-1].startswith("curl -sN ")
    script = "\n".join([*lines[:-1], "echo", f"timeout 3 {lines[-1]} || test $? -eq 124"])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPOSITORY,
        env=newcomer_environment(embedded),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    posted, stream = result.stdout.split("\n", 1)
    message = json.loads(posted)
    assert (message["user"], message["text"]) == ("bot", "hello from a bot")
    assert Message.objects.get(id=message["id"]).author == User.objects.get(username="bot")
    # The stream answered as an event stream, its position first.
    assert re.search(r"^id: \S+$", stream, flags=re.MULTILINE), stream


def test_createsuperuser_as_docs_chat_shows_it(embedded: Postgres) -> None:
    command = "cd demo && ../.venv/bin/python manage.py createsuperuser"
    assert command in (REPOSITORY / "docs" / "chat.md").read_text()
    answers = [
        ("Username", "root-admin"),
        ("Email address", "admin@example.com"),
        ("Password:", "a-long-admin-password-42"),
        ("Password (again)", "a-long-admin-password-42"),
    ]
    # `script` gives the command a terminal, as a shell would: Django prompts only then.
    process = subprocess.Popen(
        ["script", "-qec", command, "/dev/null"],
        cwd=REPOSITORY,
        env=newcomer_environment(embedded),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + 60
    for prompt, answer in answers:
        # Answer each prompt once it shows: getpass flushes what was typed before it.
        while prompt.encode() not in output.rsplit(b"\n", 1)[-1]:
            assert time.monotonic() < deadline, output.decode(errors="replace")
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if ready:
                chunk = os.read(process.stdout.fileno(), 4096)
                assert chunk, output.decode(errors="replace")
                output += chunk
        process.stdin.write(answer.encode() + b"\n")
        process.stdin.flush()
    rest, _ = process.communicate(timeout=60)
    output += rest
    assert process.returncode == 0, output.decode(errors="replace")
    assert b"Superuser created successfully." in output
    admin = User.objects.get(username="root-admin")
    assert admin.is_superuser
    # Hashed by the chat's settings (PBKDF2), not the test settings' fast hasher.
    assert PBKDF2PasswordHasher().verify("a-long-admin-password-42", admin.password)


def test_settings_refuse_to_start_without_a_secret_key_outside_development(
    embedded: Postgres,
) -> None:
    """A database elsewhere than ``.pgdata/`` is a deployment: the key must be given."""
    env = {**newcomer_environment(embedded), "DATABASE_URL": "postgresql://chat@db.invalid/chat"}
    result = subprocess.run(
        ["../.venv/bin/python", "manage.py", "check"],
        cwd=REPOSITORY / "demo",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr
