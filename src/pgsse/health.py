"""``/healthz`` and ``/readyz``: probes for load balancers and Kubernetes.

- ``/healthz`` (liveness) answers 200 as long as the process serves requests at all. It
  touches nothing else, so a database outage never gets healthy workers restarted.
- ``/readyz`` (readiness) answers 200 when this process can serve streams: its hub runs and
  is not shutting down, it holds fewer than ``MAX_STREAMS`` streams (so that it admits a
  new one), its listener is connected, and the event log answers a small read within
  ``PGSSE["PROBE_TIMEOUT"]`` seconds. Otherwise 503, with the reasons: a load balancer
  then sends new clients to the other workers.

Both are async views: they run on the server's loop, where the hub lives, and never wait
for a thread. Route them with ``path("", include("pgsse.urls"))`` or one by one.
"""

from __future__ import annotations

import asyncio

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.defaultfilters import pluralize
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from pgsse.atomic_requests import never_atomic
from pgsse.closing import CONTROL_CHANNEL
from pgsse.conf import get_settings
from pgsse.hub import get_hub

__all__ = ["healthz", "readiness_problems", "readyz"]


@never_atomic
@require_safe
@never_cache
async def healthz(request: HttpRequest) -> HttpResponse:
    """200 while the process answers requests."""
    return HttpResponse("ok\n", content_type="text/plain; charset=utf-8")


@never_atomic
@require_safe
@never_cache
async def readyz(request: HttpRequest) -> HttpResponse:
    """200 if this process can serve streams now, 503 with the reasons if not."""
    problems = await readiness_problems()
    if problems:
        return JsonResponse({"ready": False, "problems": problems}, status=503)
    return JsonResponse({"ready": True})


async def readiness_problems() -> list[str]:
    """Why this process cannot serve streams now; empty when it can.

    Starts the process's hub if nothing has yet (a server without lifespan events), so
    that a worker becomes ready without waiting for its first stream.
    """
    try:
        hub = get_hub()
    except ImproperlyConfigured as exc:
        return [str(exc)]
    if hub.shutting_down:
        return ["the process is shutting down"]
    problems = []
    limit = hub.settings.MAX_STREAMS
    held = hub.admission.open
    if limit is not None and held >= limit:
        problems.append(
            f"the process holds {held} stream{pluralize(held)}, its limit (MAX_STREAMS):"
            " it refuses new ones"
        )
    if hub.listener_pid is None:
        problems.append("the listener is not connected to PostgreSQL")
    timeout = get_settings().PROBE_TIMEOUT
    try:
        async with asyncio.timeout(timeout):
            await hub.reader.heads([CONTROL_CHANNEL])
    except TimeoutError:
        problems.append(f"the event log did not answer within {timeout:g} s")
    except Exception as exc:  # any database error: the message says which
        problems.append(f"the event log cannot be read: {exc}")
    return problems
