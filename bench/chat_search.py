"""The chat's search on 1,000,000 messages: how long a page of results takes, by kind of query.

``python -m bench.chat_search [--messages 1000000] [--runs 30]`` (or ``make bench-search``)
creates the bench database, fills it with messages written the way people write (words of
a 20,000-word vocabulary drawn with Zipf's law: a few very common, most rare; 4 to 30 words
a message; 200 rooms, 20 of them private; 2,000 authors), analyzes it, then times
``chat.search.search()`` (the whole page: the query with its permission filter, the
excerpts, the Python around them) for a user who may read the 180 public rooms and 5 of the
private ones, ``--runs`` times per query after one unmeasured run, and prints the median,
90th percentile and worst, with the plan PostgreSQL chose. Everything is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.database import BenchDatabase
from tests.processes import PYTHONPATH

VOCABULARY = 20_000
ROOMS = 200
PRIVATE_ROOMS = 20
AUTHORS = 2_000
#: Private rooms the searcher belongs to.
MEMBER_OF = 5
RESULTS = Path(__file__).resolve().parent / "results" / "chat_search.json"


@dataclass
class SearchTiming:
    query: str
    what: str
    #: Messages matching the words, in every room (what the index has to reckon with).
    matching: int
    results: int
    p50_ms: float
    p90_ms: float
    max_ms: float
    plan: str


def setup_django(database: BenchDatabase) -> None:
    """Django in this process, on the bench database (without the peers the fan-out
    benchmarks import)."""
    import os

    os.environ.update(database.environment())
    for entry in reversed(PYTHONPATH.split(os.pathsep)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    import django

    django.setup()


def close_django_connections() -> None:
    from django.db import connections

    connections.close_all()


def _vocabulary() -> list[str]:
    """Made-up words that the English stemmer keeps apart (consonant-vowel syllables)."""
    chance = random.Random(22)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: set[str] = set()
    while len(words) < VOCABULARY:
        syllables = chance.randint(2, 4)
        words.add(
            "".join(chance.choice(consonants) + chance.choice(vowels) for _ in range(syllables))
        )
    return sorted(words, key=lambda word: (len(word), word))


def populate(messages: int) -> dict[str, object]:
    """Rooms, authors and ``messages`` messages, made in SQL; returns what the queries use."""
    from django.contrib.auth.models import User
    from django.db import connection

    from chat.models import Membership, Room

    words = _vocabulary()
    authors = User.objects.bulk_create(
        [User(username=f"author{n}", password="!") for n in range(AUTHORS)], batch_size=2000
    )
    rooms = Room.objects.bulk_create(
        [Room(slug=f"room-{n}", name=f"Room {n}", private=n < PRIVATE_ROOMS) for n in range(ROOMS)]
    )
    searcher = User.objects.create(username="searcher", password="!")
    Membership.objects.bulk_create(
        [Membership(room=room, user=searcher) for room in rooms[:MEMBER_OF]]
    )
    started = time.monotonic()
    with connection.cursor() as cursor:
        # Word k (1-based) comes with probability about 1/k: exp(random * ln V) is log-uniform.
        # A bulk load: the GIN index is built once, after (as a restore would).
        cursor.execute("DROP INDEX chat_message_search")
        cursor.execute(
            """
            INSERT INTO chat_message (room_id, author_id, author_name, text, created_at, mentions)
            SELECT r.ids[1 + mod(n, %(rooms)s)], a.id, a.username,
                   (SELECT string_agg((%(words)s::text[])[
                        least(%(vocabulary)s, floor(exp(random() * ln(%(vocabulary)s)))::int)
                    ], ' ')
                    FROM generate_series(1, 4 + mod(n::bigint * 7919, 27)::int) AS w),
                   now() - make_interval(secs => %(count)s - n), '{}'
            FROM generate_series(1, %(count)s) AS n
            CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM chat_room) r
            JOIN auth_user a ON a.username = 'author' || mod(n, %(authors)s)
            """,
            {
                "rooms": ROOMS,
                "words": words,
                "vocabulary": VOCABULARY,
                "count": messages,
                "authors": AUTHORS,
            },
        )
        inserted = time.monotonic()
        cursor.execute("CREATE INDEX chat_message_search ON chat_message USING gin (search_vector)")
        cursor.execute("ANALYZE chat_message")
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('chat_message_search'))")
        index_size = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_table_size('chat_message'))")
        table_size = cursor.fetchone()[0]
    filled = time.monotonic() - started
    close_django_connections()
    return {
        "index_seconds": round(filled - (inserted - started), 1),
        "words": words,
        "authors": [author.username for author in authors[:3]],
        "private": rooms[0].slug,
        "public": rooms[PRIVATE_ROOMS].slug,
        "fill_seconds": round(filled, 1),
        "index_size": index_size,
        "table_size": table_size,
    }


def queries(data: dict[str, object]) -> list[tuple[str, str]]:
    words: list[str] = data["words"]  # type: ignore[assignment]
    authors: list[str] = data["authors"]  # type: ignore[assignment]
    return [
        (words[0], "the most common word"),
        (words[9], "the 10th word"),
        (words[199], "the 200th word"),
        (words[4999], "the 5,000th word"),
        (words[19_999], "the rarest word"),
        ("qwxyzzy", "a word no message has"),
        (f"{words[99]} {words[149]}", "two words of ranks 100 and 150, both"),
        (f'"{words[0]} {words[1]}"', "a phrase of the two most common words"),
        (f"{words[0]} or {words[5000]}", "either of two words"),
        (f"{words[0]} from:{authors[1]}", "the most common word, from one author"),
        (f"{words[199]} in:{data['private']}", "the 200th word, in one private room"),
        (f"from:{authors[2]}", "one author's messages (no words)"),
    ]


def _plan(user: object, text: str) -> str:
    """The plan of the query ``chat.search`` runs (its inner scan), in a line."""
    from django.db import connection

    from chat import search

    captured: list[str] = []

    def explain(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "chat_message m" in sql and not captured:
            cursor = context["cursor"].cursor  # psycopg's own: not wrapped again
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
            captured.extend(row[0] for row in cursor.fetchall())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        search.search(user, text)
    scans = [line.strip() for line in captured if "Scan" in line]
    return " / ".join(scans) or "; ".join(line.strip() for line in captured[:3])


def _matching(text: str) -> int:
    from django.db import connection

    from chat import search

    words = search.parse(text).words
    if not words:
        return -1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM chat_message"
            " WHERE search_vector @@ websearch_to_tsquery('chat_search', %s)",
            [words],
        )
        return int(cursor.fetchone()[0])


def measure(text: str, what: str, runs: int) -> SearchTiming:
    from django.contrib.auth.models import User

    from chat import search

    user = User.objects.get(username="searcher")
    page = search.search(user, text)  # unmeasured: caches, plans
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        search.search(user, text)
        times.append(time.perf_counter() - started)
    ordered = sorted(times)
    return SearchTiming(
        query=text,
        what=what,
        matching=_matching(text),
        results=len(page.results),
        p50_ms=round(statistics.median(times) * 1000, 2),
        p90_ms=round(ordered[int(0.9 * (len(ordered) - 1))] * 1000, 2),
        max_ms=round(ordered[-1] * 1000, 2),
        plan=_plan(user, text),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chat_search")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)
    database = BenchDatabase()
    try:
        database.start(peers=False)
        setup_django(database)
        data = populate(args.messages)
        print(
            f"{args.messages:,} messages filled in {data['fill_seconds']} s (GIN index built in "
            f"{data['index_seconds']} s); table {data['table_size']}, GIN index "
            f"{data['index_size']}",
            flush=True,
        )
        timings = [measure(text, what, args.runs) for text, what in queries(data)]
        close_django_connections()
    finally:
        database.drop()
    print("\n| query | matching | results | p50 ms | p90 ms | max ms | plan |")
    print("|---|---|---|---|---|---|---|")
    for timing in timings:
        print(
            f"| {timing.what} | {timing.matching:,} | {timing.results} | {timing.p50_ms} "
            f"| {timing.p90_ms} "
            f"| {timing.max_ms} | {timing.plan} |"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "messages": args.messages,
                "fill_seconds": data["fill_seconds"],
                "index_seconds": data["index_seconds"],
                "table_size": data["table_size"],
                "index_size": data["index_size"],
                "timings": [asdict(timing) for timing in timings],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
