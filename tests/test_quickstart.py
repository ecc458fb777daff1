"""docs/quickstart.md followed literally in a fresh Django project.

``django-admin startproject yourproject`` (the name the quick start uses), a fresh
PostgreSQL database, and the code blocks of the quick start pasted where it says: the
settings lines, the urls snippet, the publish block (in an app of the "existing project"
that has the ``Order`` model it mentions). ``migrate`` must create the log tables, the
server command of step 5 must serve the stream, a logged-in user must receive the event
published by the block, and an anonymous visitor must be refused, as the text says.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
import pytest
from asgiref.sync import sync_to_async
from psycopg import sql

from tests.clients import open_stream, stream_client
from tests.postgres import Postgres
from tests.servers import REPOSITORY, ServerProcess

QUICKSTART = REPOSITORY / "docs" / "quickstart.md"
PROJECT = "yourproject"
PASSWORD = "quick-start-password"

# The app of the "existing project": the quick start publishes from code that creates an Order.
ORDER_MODEL = """
from django.db import models


class Order(models.Model):
    customer_id = models.IntegerField()
"""


def code_blocks(language: str) -> list[str]:
    """The fenced blocks of the quick start in ``language``, dedented."""
    text = QUICKSTART.read_text()
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, re.S | re.M)
    return [
        "\n".join(line[len(indent) :] for line in body.splitlines()) + "\n"
        for indent, body in blocks
    ]


def block_with(language: str, marker: str) -> str:
    found = [block for block in code_blocks(language) if marker in block]
    assert found, f"no {language} block with {marker!r} in {QUICKSTART}"
    return found[0]


def serve_command() -> list[str]:
    """Step 5's command, bound to the test's address."""
    match = re.search(r"Serve with an ASGI server: `(uvicorn [^`]+)`", QUICKSTART.read_text())
    assert match, "the quick start no longer says how to serve"
    program, *arguments = match.group(1).split()
    return [sys.executable, "-m", program, *arguments, "--host", "127.0.0.1", "--port", "{port}"]


@dataclass
class FreshDatabase:
    url: str
    settings: dict[str, object]


@pytest.fixture
def fresh_database(pg: Postgres) -> Iterator[FreshDatabase]:
    """An empty database on the test server: ``migrate`` starts from nothing."""
    name = f"quickstart_{os.getpid()}"
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(pg.url)._replace(path=f"/{name}").geturl()
    yield FreshDatabase(url, dict(dj_database_url.parse(url)))
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def manage(project: Path, *arguments: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=project,
        env=project_env(project, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(arguments)}:\n{result.stderr}"
    return result.stdout


def project_env(project: Path, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PYTHONPATH")}
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": f"{PROJECT}.settings",
        "PYTHONPATH": str(project),
        **env,
    }


def build_project(root: Path, database: dict[str, object]) -> Path:
    root.mkdir()
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", PROJECT, str(root)],
        check=True,
        timeout=60,
        env={k: v for k, v in project_env(root).items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    manage(root, "startapp", "shop")
    (root / "shop" / "models.py").write_text(ORDER_MODEL)
    settings = root / PROJECT / "settings.py"
    # The project's own database and app, as an existing project has them...
    settings.write_text(
        settings.read_text()
        + f"\nDATABASES = {{'default': {database!r}}}\n"
        + "INSTALLED_APPS = [*INSTALLED_APPS, 'shop']\n"
    )
    # ...then the quick start's lines, where "..." stands for the apps already there.
    step_1 = block_with("python", 'INSTALLED_APPS = [..., "pgsse"]')
    settings.write_text(settings.read_text() + step_1.replace("[...,", "[*INSTALLED_APPS,"))
    urls = root / PROJECT / "urls.py"
    urls.write_text(urls.read_text() + "\n" + block_with("python", "StreamView"))
    (root / PROJECT / "asgi.py").write_text(block_with("python", "pgsse.asgi.wrap"))
    return root


def test_the_quick_start_works_when_followed_literally(
    tmp_path: Path, fresh_database: FreshDatabase
) -> None:
    project = build_project(tmp_path / "project", fresh_database.settings)
    manage(project, "makemigrations", "shop")
    manage(project, "migrate", "--noinput")
    with psycopg.connect(fresh_database.url) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE tablename LIKE 'pgsse%'"
            ).fetchall()
        }
    assert {"pgsse_channel", "pgsse_event"} <= tables, tables

    manage(
        project, "createsuperuser", "--noinput", "--username", "alice",
        "--email", "alice@example.com", DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )  # fmt: skip
    alice_pk = manage(
        project, "shell", "-c",
        "from django.contrib.auth.models import User; print(User.objects.get().pk)",
    ).splitlines()[-1]  # fmt: skip
    server = ServerProcess(
        serve_command(), "", DJANGO_SETTINGS_MODULE=f"{PROJECT}.settings", PYTHONPATH=str(project)
    )
    server.start()
    try:
        order_id = asyncio.run(stream_an_order(server.url, project, alice_pk))
        script_url = script_tag_source(project)
        asyncio.run(static_files_are_served(server.url, script_url))
    finally:
        server.terminate(timeout=15)
    assert order_id > 0
    assert "pgsse.W006" not in manage(project, "check")


def script_tag_source(project: Path) -> str:
    """Where step 5's template tags point the browser for pgsse.js."""
    template = block_with("django", "pgsse_script")
    code = (
        "from django.template import engines\n"
        f"print(engines['django'].from_string({template!r}).render())\n"
    )
    rendered = manage(project, "shell", "-c", code)
    match = re.search(r'<script src="([^"]+)"', rendered)
    assert match, rendered
    return match.group(1)


async def static_files_are_served(base_url: str, script_url: str) -> None:
    """The fresh project has DEBUG on: served as step 6 says, the wrapper serves static
    files as runserver would, pgsse.js and the admin's styles alike."""
    async with stream_client(base_url) as client:
        script = await client.get(script_url)
        assert script.status_code == 200, (script_url, script.text[:300])
        assert "javascript" in script.headers["content-type"]
        assert script.text == (REPOSITORY / "src/pgsse/static/pgsse/pgsse.js").read_text()
        styles = await client.get("/static/admin/css/base.css")
        assert styles.status_code == 200
        assert (await client.get("/static/nothing-here.js")).status_code == 404


async def stream_an_order(base_url: str, project: Path, alice_pk: str) -> int:
    async with stream_client(base_url) as anonymous:
        response = await anonymous.get("/events/")
        assert response.status_code == 403, "only logged-in users may open a stream"

    async with stream_client(base_url) as client:
        (await client.get("/admin/login/")).raise_for_status()
        response = await client.post(
            "/admin/login/",
            data={
                "username": "alice",
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
                "next": "/admin/",
            },
        )
        assert response.status_code == 302, response.text
        async with open_stream(client, "/events/") as reader:
            await reader.wait_for(lambda r: bool(r.last_id))
            # Step 2's block, run in the project, with the Order it creates made concrete.
            step_2 = block_with("python", "pgsse.publish(")
            code = "from shop.models import Order\n" + step_2.replace(
                "Order.objects.create(...)", f"Order.objects.create(customer_id={alice_pk})"
            )
            output = await sync_to_async(manage)(project, "shell", "-c", code + "print(order.id)\n")
            order_id = int(output.splitlines()[-1])
            await reader.wait_for(lambda r: bool(r.of_type("order_created")))
            assert [json.loads(e.data) for e in reader.of_type("order_created")] == [
                {"id": order_id}
            ]
    return order_id
