"""The settings of /metrics and the probes: checked like every other, secrets never shown."""

from __future__ import annotations

import sys

import pytest
from django.test import override_settings

from pgsse.checks import check_metrics, check_settings


def problems(**pgsse: object) -> list[str]:
    with override_settings(PGSSE=pgsse):
        return [message.msg for message in check_settings(None)]


def test_allowed_networks_must_be_addresses_or_networks() -> None:
    assert problems(METRICS_ALLOW_FROM=["127.0.0.1", "10.0.0.0/8", "::1"]) == []
    (problem,) = problems(METRICS_ALLOW_FROM=["127.0.0.1", "localhost"])
    assert "METRICS_ALLOW_FROM" in problem
    assert "list of IP addresses or networks" in problem
    assert problems(METRICS_ALLOW_FROM="127.0.0.1")  # a string, not a list


def test_a_short_token_is_refused_without_being_shown() -> None:
    assert problems(METRICS_TOKEN="x" * 16) == []
    (problem,) = problems(METRICS_TOKEN="hunter2-secret")
    assert "at least 16 characters" in problem
    assert "hunter2" not in problem


def test_probe_timeout_must_be_positive() -> None:
    assert problems(PROBE_TIMEOUT=0)
    assert problems(PROBE_TIMEOUT=0.2) == []


def test_metrics_without_prometheus_client_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(PGSSE={"METRICS_ALLOW_FROM": ["127.0.0.1"]}):
        assert check_metrics(None) == []
        monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
        (error,) = check_metrics(None)
        assert error.id == "pgsse.E012"
    with override_settings(PGSSE={}):
        assert check_metrics(None) == []  # metrics off: nothing to install
