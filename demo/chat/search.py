"""Full-text search over the messages a user may read.

PostgreSQL does it all: each message's ``search_vector`` is a stored generated column
(its text and its files' names through ``to_tsvector('chat_search', ...)``: English
stemming with accents folded, migrations ``chat.0006_search`` and
``chat.0013_search_file_names``) under a GIN index; a query is read by
``websearch_to_tsquery`` (words, ``"a phrase"``, ``or``, ``-word``), plus the filters
people type in Slack and Zulip: ``from:alice`` (or ``from:@alice``) and ``in:lobby`` (or
``in:#lobby``).

Results are the newest first, a page at a time, by message id (``before``: the last id
of the page before). Only rooms the user may read (:func:`chat.access.visible_rooms`:
public rooms, and private ones they belong to) are searched, inside the query itself:
nothing is filtered after the fact, so a page is always full when more results exist.

The statement is built from fixed fragments (``psycopg.sql``), one per filter given, with
every value a parameter: the planner sees the actual query, and chooses for a common
word a backward walk of the primary key that stops at the page's last result, and for a
rare one the GIN index (docs/performance.md measures both on 1,000,000 messages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from psycopg import sql

from chat import access
from chat.conversations import conversation_name
from chat.sidebar import people_of_rooms

#: Results per page, and the longest query accepted.
PAGE_SIZE = 20
MAX_QUERY_LENGTH = 500
#: What marks the matched words in an excerpt, between PostgreSQL and this module (code
#: points of Unicode's private use area: a message containing them only mislays a mark).
_START, _STOP = "\ue000", "\ue001"
#: A short message is shown whole; a long one by its best two fragments.
SHORT_MESSAGE = 300
_MARKS = f"StartSel={_START}, StopSel={_STOP}"
_WHOLE = f"{_MARKS}, HighlightAll=true"
_FRAGMENTS = f'{_MARKS}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'

_FILTER = re.compile(r"(?<!\S)(from|in):([@#]?)(\S+)", re.IGNORECASE)


class SearchError(ValueError):
    """A query that cannot be run; the message says why, for people."""


@dataclass
class Query:
    """What the user typed, read: the words, and the filters."""

    text: str
    words: str
    author: str | None = None
    room: str | None = None

    @property
    def filters(self) -> list[str]:
        shown = [f"from:{self.author}"] if self.author else []
        return shown + ([f"in:{self.room}"] if self.room else [])


@dataclass
class Result:
    id: int
    room: str
    room_id: int
    room_name: str
    user: str
    created_at: datetime
    edited_at: datetime | None
    #: The message's text around the matches: ``[{"text", "match"}]``.
    excerpt: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where the result leads: the message in its room, the history around it loaded."""
        return f"/rooms/{self.room}/?message={self.id}"

    def as_data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "room_id": self.room_id,
            "room_name": self.room_name,
            "user": self.user,
            "created_at": self.created_at.isoformat(),
            "edited_at": self.edited_at.isoformat() if self.edited_at else None,
            "excerpt": self.excerpt,
            "url": self.url,
        }


@dataclass
class Page:
    query: Query
    results: list[Result]
    #: The ``before`` of the next page, None if this one is the last.
    next_before: int | None
    #: Why nothing could match (only words search ignores, like "the"), or None.
    notice: str | None = None

    def as_data(self) -> dict[str, Any]:
        return {
            "query": self.query.text,
            "results": [result.as_data() for result in self.results],
            "has_more": self.next_before is not None,
            "next_before": self.next_before,
            "notice": self.notice,
        }


def parse(text: str) -> Query:
    """Read ``from:`` and ``in:`` out of what the user typed; the rest are the words."""
    if "\x00" in text:
        raise SearchError("A search cannot contain NUL characters.")
    text = " ".join(text.split())
    if not text:
        raise SearchError("Type something to search for.")
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"A search is at most {MAX_QUERY_LENGTH} characters.")
    query = Query(text=text, words="")
    for kind, _, value in _FILTER.findall(text):
        if kind.lower() == "from":
            query.author = value
        else:
            query.room = value.lower()
    query.words = " ".join(_FILTER.sub(" ", text).split())
    return query


# The statement's parts. Each is fixed text; the filters given are joined with AND.
_SELECT = sql.SQL(
    """
    SELECT found.id, found.room_id, r.slug, r.name, r.direct, found.author_name,
           found.created_at, found.edited_at,
           {headline}
    FROM (
        SELECT m.id, m.room_id, m.author_name, m.created_at, m.edited_at,
               concat_ws(' · ', nullif(m.text, ''), nullif(array_to_string(ARRAY(
                   SELECT jsonb_array_elements_text(
                       jsonb_path_query_array(m.attachments, '$[*].name'))
               ), ', '), '')) AS text
        FROM chat_message m
        WHERE {conditions}
        ORDER BY m.id DESC
        LIMIT %(limit)s
    ) found
    JOIN chat_room r ON r.id = found.room_id
    ORDER BY found.id DESC
    """
)
#: What the words match: as typed, or as loosened (:func:`loosened`).
_QUERY = (
    "(websearch_to_tsquery('chat_search', %(words)s)"
    " || websearch_to_tsquery('chat_search', %(loose)s))"
)
_HEADLINE = sql.SQL(
    f"ts_headline('chat_search', found.text, {_QUERY},"
    " CASE WHEN length(found.text) <= %(short)s THEN %(whole)s ELSE %(fragments)s END)"
)
_MATCHES = sql.SQL(f"m.search_vector @@ {_QUERY}")

#: Punctuation inside a word: "Report_2026.pdf", "Quarterly-Report".
_INNER_PUNCTUATION = re.compile(r"(?<=\w)[-._]+(?=\w)")


def loosened(words: str) -> str:
    """``words`` with the punctuation inside words made spaces. PostgreSQL reads
    ``Report_2026.pdf`` as one token, which a file named ``Quarterly-Report_2026.pdf`` does
    not hold (it holds ``report``, ``2026`` and ``pdf``, and its whole name): the search
    matches either reading of the words."""
    return _INNER_PUNCTUATION.sub(" ", words)


_IN_ROOMS = sql.SQL("m.room_id = ANY(%(rooms)s)")
_BY_AUTHOR = sql.SQL("m.author_id = %(author)s")
_BEFORE = sql.SQL("m.id < %(before)s")


def _readable_rooms(user: Any, room_slug: str | None) -> list[int]:
    rooms = access.visible_rooms(user)
    if room_slug is not None:
        rooms = rooms.filter(slug=room_slug)
    return list(rooms.values_list("pk", flat=True))


def _author_pk(username: str) -> int | None:
    found = get_user_model().objects.filter(username__iexact=username).values_list("pk", flat=True)
    return found.first()


def _ignored_only(words: str) -> bool:
    """Whether the words are all of those search ignores ("the", "and", punctuation)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT websearch_to_tsquery('chat_search', %s)::text", [words])
        row = cursor.fetchone()
    return not row or not row[0]


def search(user: Any, text: str, before: int | None = None, limit: int = PAGE_SIZE) -> Page:
    """A page of the messages ``user`` may read that match ``text``, newest first."""
    query = parse(text)
    if not query.words and not query.author:
        raise SearchError("Type some words to search for, not only 'in:'.")
    if query.words and _ignored_only(query.words):
        notice = f"Nothing to search for in “{query.words}”: such common words are ignored."
        return Page(query, [], None, notice)
    rooms = _readable_rooms(user, query.room)
    author = _author_pk(query.author) if query.author else None
    if not rooms or (query.author and author is None):
        return Page(query, [], None)
    conditions = [_IN_ROOMS]
    params: dict[str, Any] = {"rooms": rooms, "limit": limit + 1}
    if query.words:
        conditions.append(_MATCHES)
        params.update(
            words=query.words,
            loose=loosened(query.words),
            short=SHORT_MESSAGE,
            whole=_WHOLE,
            fragments=_FRAGMENTS,
        )
    if author is not None:
        conditions.append(_BY_AUTHOR)
        params["author"] = author
    if before is not None:
        conditions.append(_BEFORE)
        params["before"] = before
    headline = _HEADLINE if query.words else sql.SQL("found.text")
    statement = _SELECT.format(headline=headline, conditions=sql.SQL(" AND ").join(conditions))
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), params)
        rows = cursor.fetchall()
    kept = rows[:limit]
    results = [_result(row, bool(query.words)) for row in kept]
    _name_conversations(user, results, {row[1] for row in kept if row[4]})
    next_before = results[-1].id if len(rows) > limit else None
    return Page(query, results, next_before)


def _result(row: tuple[Any, ...], highlighted: bool) -> Result:
    pk, room_id, slug, name, _, user, created_at, edited_at, text = row
    return Result(
        id=pk,
        room=slug,
        room_id=room_id,
        room_name=name,
        user=user,
        created_at=created_at,
        edited_at=edited_at,
        excerpt=excerpt_parts(text) if highlighted else [{"text": _cut(text), "match": False}],
    )


def _name_conversations(user: Any, results: list[Result], direct: set[int]) -> None:
    """Results from direct conversations named as the searcher reads them (after the
    others in them, by their display names), as the sidebar names them: a conversation's
    stored name is its people's usernames, the searcher's own included."""
    if not direct:
        return
    people = people_of_rooms(sorted(direct))
    viewer = user.get_username() if user.is_authenticated else ""
    for result in results:
        if result.room_id in direct:
            result.room_name = conversation_name(people.get(result.room_id, []), viewer)


def _cut(text: str, length: int = SHORT_MESSAGE) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def excerpt_parts(headline: str) -> list[dict[str, Any]]:
    """PostgreSQL's headline, its marks made parts: ``[{"text", "match"}]``."""
    parts: list[dict[str, Any]] = []
    for index, chunk in enumerate(re.split(f"[{_START}{_STOP}]", headline)):
        if chunk:
            parts.append({"text": chunk, "match": index % 2 == 1})
    return parts
