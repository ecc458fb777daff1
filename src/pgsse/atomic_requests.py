"""pgsse's async views are never run in a transaction, whatever ``ATOMIC_REQUESTS`` says.

Django wraps each view in ``atomic()`` for every database with ``ATOMIC_REQUESTS = True``
and refuses to do so for an async view ("You cannot use ATOMIC_REQUESTS with async
views."): in such a project ``/healthz``, ``/readyz`` and ``/metrics`` would answer 500.
None of them writes, and a stream is never one transaction, so each is exempt on every
database, as ``transaction.non_atomic_requests`` exempts a view on one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["never_atomic"]

View = TypeVar("View", bound=Callable[..., object])


class _EveryAlias(set[str]):
    """Holds every database alias, those of databases added to the settings later too.

    A set, so that ``@transaction.non_atomic_requests`` stacked on top still works (it
    adds its alias to the view's set).
    """

    def __contains__(self, alias: object) -> bool:
        return True


def never_atomic(view: View) -> View:
    """``view``, exempt from ``ATOMIC_REQUESTS`` on every database (apply it outermost)."""
    view._non_atomic_requests = _EveryAlias()  # type: ignore[attr-defined]  # read by Django
    return view
