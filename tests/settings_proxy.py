"""Test settings for servers behind nginx: heartbeats well within the proxy's test timeout."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import PGSSE as _PGSSE

PGSSE = {**_PGSSE, "HEARTBEAT_INTERVAL": 0.5, "RETRY_MS": 200}
