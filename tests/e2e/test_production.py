"""The chat's production settings (chatsite.production) and its static files, on real servers.

Static files are served by servestatic's ASGI wrapper in front of the application
(chatsite/static_files.py): checked under `make run`'s command and settings (DEBUG, files
found in the apps), and under the production settings (collected, hashed, compressed).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.postgres import Postgres
from tests.servers import REPOSITORY, ServerProcess, uvicorn_command

pytestmark = pytest.mark.django_db(transaction=True)

DEMO = REPOSITORY / "demo"


def production_env(database_url: str, static_root: Path | None = None) -> dict[str, str]:
    env = {
        "DJANGO_SETTINGS_MODULE": "chatsite.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,chat.example.com",
        "DATABASE_URL": database_url,
        "DJANGO_DEBUG": "",
    }
    if static_root is not None:
        env["DJANGO_STATIC_ROOT"] = str(static_root)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=DEMO,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY / "src"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chat's static files collected as production does (hashed, compressed)."""
    root = tmp_path_factory.mktemp("static")
    env = production_env("postgresql://nobody@localhost/unused", root)
    done = manage("collectstatic", "--noinput", env=env)
    assert done.returncode == 0, done.stderr
    return root


def test_check_deploy_passes_with_the_production_settings(static_root: Path) -> None:
    env = production_env("postgresql://nobody@localhost/unused", static_root)
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL"])
def test_production_settings_refuse_to_start_without_their_secrets(
    missing: str, static_root: Path
) -> None:
    env = production_env("postgresql://nobody@localhost/unused", static_root)
    env[missing] = ""
    done = manage("check", env=env)
    assert done.returncode != 0
    assert f"reads {missing}" in done.stderr


@pytest.fixture
def production_server(pg: Postgres, static_root: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(
        uvicorn_command(lifespan="auto"),
        pg.url,
        None,
        **production_env(pg.url, static_root),
    )
    try:
        yield server.start()
    finally:
        server.kill()
        server.log.close()


def test_production_serves_hashed_compressed_static_files_and_probes_over_http(
    production_server: ServerProcess, static_root: Path
) -> None:
    import json

    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["chat/chat.css"]
    assert hashed != "chat/chat.css"
    https = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=production_server.url) as client:
        css = client.get(f"/static/{hashed}", headers={**https, "Accept-Encoding": "gzip"})
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert css.headers["content-encoding"] == "gzip"
        assert "immutable" in css.headers["cache-control"]
        assert "max-age=315360000" in css.headers["cache-control"]
        # Plain HTTP to the site is sent to HTTPS; probes and metrics are answered as they are.
        page = client.get("/accounts/login/")
        assert page.status_code == 301
        assert page.headers["location"].startswith("https://")
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)
        assert client.get("/metrics").status_code == 200
        secure = client.get("/accounts/login/", headers=https)
        assert secure.status_code == 200
        assert "strict-transport-security" in secure.headers
        assert f"/static/{hashed}" in secure.text  # pages link the hashed names
    log = production_server.output()
    assert "Traceback" not in log


def test_make_run_serves_static_files_from_the_apps(pg: Postgres) -> None:
    """`make run`'s command and settings (DEBUG): files found in the apps, no collectstatic."""
    server = ServerProcess(
        uvicorn_command("--timeout-graceful-shutdown", "5", lifespan="auto"),
        pg.url,
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_DEBUG="1",
    )
    try:
        server.start()
        with httpx.Client(base_url=server.url) as client:
            for path, content_type in [
                ("/static/chat/chat.css", "text/css"),
                ("/static/chat/chat.js", "text/javascript"),
                ("/static/pgsse/pgsse.js", "text/javascript"),
                ("/static/admin/css/base.css", "text/css"),
            ]:
                response = client.get(path)
                assert response.status_code == 200, path
                assert response.headers["content-type"].startswith(content_type), path
            assert client.get("/static/chat/missing.css").status_code == 404
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 200  # from 127.0.0.1
    finally:
        server.kill()
        server.log.close()
