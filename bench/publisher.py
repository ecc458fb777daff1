"""Publishing from the driver process through ``pgsse.publish``, on the bench database."""

from __future__ import annotations

import os
import sys
import time

from bench.database import PYTHONPATH, BenchDatabase

#: Padding that makes an event's data about 100 bytes, as in the design's measurements.
PAD = "x" * 72


def setup_django(database: BenchDatabase) -> None:
    """Configure Django in this process with the test settings on the bench database."""
    os.environ.update(database.environment())
    for entry in reversed(PYTHONPATH.split(os.pathsep)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import django

    django.setup()


def timed_data() -> dict[str, object]:
    """Event data stamped with the publish time (the swarm reads ``"t"`` first)."""
    return {"t": time.monotonic(), "pad": PAD}


def publish_timed(channel: str) -> float:
    """Publish one stamped event; return the seconds ``publish()`` took (its commit too)."""
    import pgsse

    started = time.monotonic()
    pgsse.publish(channel, "e", timed_data())
    return time.monotonic() - started


def publish_for(channel: str, seconds: float) -> float:
    """Publish as fast as one caller can for ``seconds``; return publishes per second."""
    import pgsse

    count = 0
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        pgsse.publish(channel, "e", timed_data())
        count += 1
    return count / (time.monotonic() - started)


def close_django_connections() -> None:
    """Close this thread's Django connections (they would count as the server's)."""
    from django.db import connections

    connections.close_all()
