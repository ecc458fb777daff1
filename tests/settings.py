"""Test settings: the chat's settings on a test PostgreSQL.

With ``DATABASE_URL`` set, tests use that server (pytest-django creates and drops its
``test_`` database there). Otherwise an embedded PostgreSQL is started under
``.pgdata/test`` for the test session and stopped when it ends.
"""

from __future__ import annotations

import json
import os

from chatsite import embedded_db
from tests import postgres

os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-secret")
# Attachments of this test run, shared with its server processes (which inherit it);
# tests/conftest.py removes the folder at the end.
os.environ.setdefault(
    "DJANGO_MEDIA_ROOT", str(embedded_db.PGDATA_ROOT / "test-media" / str(os.getpid()))
)
os.environ["DATABASE_URL"] = postgres.server_url()

from chatsite.settings import *  # noqa: F403

# Subprocess servers of pgsse alone use tests/urls.py.
ROOT_URLCONF = os.environ.get("TEST_ROOT_URLCONF", ROOT_URLCONF)  # noqa: F405

# One test database per pytest process: several runs may share the embedded server.
DATABASES["default"]["TEST"] = {"NAME": f"test_pgsse_{os.getpid()}"}  # noqa: F405

PGSSE = {
    # Short intervals keep fault tests quick; production defaults are documented.
    "SWEEP_INTERVAL": 1.0,
    "HEALTH_INTERVAL": 2.0,
    "HEALTH_TIMEOUT": 2.0,
    "RECONNECT_MAX_DELAY": 0.5,
    "METRICS_ALLOW_FROM": ["127.0.0.1"],
    # Servers in subprocesses take their test's own options from the environment.
    **json.loads(os.environ.get("TEST_PGSSE", "{}")),
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
