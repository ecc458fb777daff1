"""The test settings with ``ATOMIC_REQUESTS = True``, as many projects have them: every view
in a transaction, except those exempt (pgsse's streams, probes and metrics)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES as _DATABASES

DATABASES = {"default": {**_DATABASES["default"], "ATOMIC_REQUESTS": True}}
