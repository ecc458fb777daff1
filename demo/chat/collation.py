"""Sorting names as people sort them: accents and case folded, numbers by value.

``Été`` sorts with ``ete`` between ``Avril`` and ``Zoé``, ``room 9`` before ``room 10``,
and the same key is computed by the pages (``static/chat/sidebar.js``, ``sortKey``) when
they insert a room that arrives live, so the server's order and the page's agree.

The key: the name lower-cased, decomposed (NFKD), its combining marks dropped and ``ß``
spelled ``ss``; then cut into runs of ASCII digits (compared by value: by length once
leading zeros are dropped, then digit by digit, so that no run is too long to compare) and
of anything else (compared by code point). Names equal under that key keep a stable
order: by the name itself, code point by code point.
"""

from __future__ import annotations

import re
import unicodedata

_RUNS = re.compile(r"([0-9]+)")
#: A part of a key: ``(0, length, digits)`` for a number, ``(1, 0, text)`` for the rest,
#: so that a number sorts before letters (as "0" comes before "a").
Part = tuple[int, int, str]


def fold(name: str) -> str:
    """``name`` with case and accents folded: ``"Été"`` -> ``"ete"``."""
    decomposed = unicodedata.normalize("NFKD", name.lower())
    bare = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    return bare.replace("ß", "ss")


def sort_key(name: str) -> tuple[tuple[Part, ...], str]:
    """What to sort ``name`` by, among other names (see the module's doc)."""
    parts: list[Part] = []
    for index, run in enumerate(_RUNS.split(fold(name))):
        if not run:
            continue
        # re.split puts the digit runs (the group) at odd indexes.
        if index % 2:
            digits = run.lstrip("0") or "0"
            parts.append((0, len(digits), digits))
        else:
            parts.append((1, 0, run))
    return tuple(parts), name
