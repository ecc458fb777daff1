from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from tests.postgres import Postgres


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium: Playwright cannot download its own browser here."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed (make test installs it with apt-get)")
    return {**browser_type_launch_args, "executable_path": executable}


@pytest.fixture
def restartable_pg(pg: Postgres, transactional_db: None) -> Iterator[Postgres]:
    """The embedded server, which the test may restart; connections are renewed after."""
    if not pg.can_restart:
        pytest.skip("DATABASE_URL names an external server, which this test cannot restart")
    yield pg
    # The restart killed every connection: renew the main thread's (the flush after the
    # test needs it) and the one asgiref's thread keeps for async tests.
    connection.close()
    asyncio.run(sync_to_async(connections.close_all)())
