"""Operators' endpoints, at fixed paths: ``path("", include("pgsse.urls"))``.

- ``/healthz`` and ``/readyz``: probes (:mod:`pgsse.health`);
- ``/metrics``: Prometheus metrics, off until ``PGSSE["METRICS_ALLOW_FROM"]`` or
  ``PGSSE["METRICS_TOKEN"]`` is set (:mod:`pgsse.metrics`).
"""

from __future__ import annotations

from django.urls import path

from pgsse.health import healthz, readyz
from pgsse.metrics import metrics

app_name = "pgsse"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
]
