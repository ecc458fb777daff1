"""Search over real HTTP and PostgreSQL: what matches (stems, accents, phrases, filters),
only in the rooms the searcher may read, newest first and paged, the excerpts, the
errors, the rate limit, and a plan that uses the GIN index."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection

from chat import search
from chat.models import Attachment, Message, Room
from tests.attachment_files import PDF
from tests.chat_accounts import ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)


def found(account: ChatAccount, query: str, **extra: Any) -> list[str]:
    answer = account.client.get("/api/search/", params={"q": query, **extra})
    assert answer.status_code == 200, answer.text
    return [
        "".join(part["text"] for part in result["excerpt"]) for result in answer.json()["results"]
    ]


def test_search_finds_words_as_people_type_them(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"message": (1000, 1000, 10.0), "search": (1000, 1000, 10.0)}
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    alice.say("lobby", "We deployed the new café menu on Friday")
    bob.say("random", "Deploying again: the release is ready")
    bob.say("lobby", "lunch at the cafe?")
    alice.say("lobby", "nothing to see here")
    # Stems ("deploy" finds "deployed" and "Deploying"), newest first.
    assert found(alice, "deploy") == [
        "Deploying again: the release is ready",
        "We deployed the new café menu on Friday",
    ]
    # Accents folded both ways.
    assert found(alice, "cafe") == ["lunch at the cafe?", "We deployed the new café menu on Friday"]
    assert found(alice, "CAFÉ") == found(alice, "cafe")
    # Phrases, or, exclusion: websearch syntax.
    assert found(alice, '"new café"') == ["We deployed the new café menu on Friday"]
    assert len(found(alice, "lunch or release")) == 2
    assert found(alice, "deploy -friday") == ["Deploying again: the release is ready"]
    # Filters: from: and in:, with or without their sigils.
    assert found(alice, "deploy from:bob") == ["Deploying again: the release is ready"]
    assert found(alice, "deploy from:@Alice in:#lobby") == [
        "We deployed the new café menu on Friday"
    ]
    assert found(alice, "from:bob in:lobby") == ["lunch at the cafe?"]
    assert found(alice, "deploy from:nobody") == []
    # Matches are marked in the excerpt.
    answer = alice.client.get("/api/search/", params={"q": "menu"}).json()
    result = answer["results"][0]
    assert {"text": "menu", "match": True} in result["excerpt"]
    assert result["url"] == f"/rooms/lobby/?message={result['id']}"
    assert (result["room"], result["user"]) == ("lobby", "alice")
    # Words search ignores say so.
    ignored = alice.client.get("/api/search/", params={"q": "the and"}).json()
    assert ignored["results"] == []
    assert "ignored" in ignored["notice"]
    alice.close()
    bob.close()


def post_files(account: ChatAccount, room: str, names: list[str], text: str = "") -> int:
    """A message of ``names`` (PDFs), with ``text`` or without; its id."""
    answer = account.client.post(
        f"/api/rooms/{room}/messages/",
        data={"text": text} if text else {},
        files=[("file", (name, PDF, "application/pdf")) for name in names],
        headers={"X-CSRFToken": account.csrf_token},
    )
    assert answer.status_code == 201, answer.text
    message_id: int = answer.json()["id"]
    return message_id


def test_files_are_found_by_their_names(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {
        "message": (1000, 1000, 10.0),
        "search": (1000, 1000, 10.0),
        "upload": (1000, 1000, 10.0),
    }
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    report = post_files(alice, "lobby", ["Quarterly-Report_2026.pdf"])
    post_files(alice, "lobby", ["notes été.pdf", "agenda.pdf"], text="minutes of the meeting")
    slug = alice.create_room("Plans", private=True)
    post_files(alice, slug, ["secret-launch-plan.pdf"])
    alice.say("lobby", "the report is late")

    # A message of files alone shows their names; one with text, its text and then them.
    assert found(alice, "quarterly") == ["Quarterly-Report_2026.pdf"]
    # Each name whole, or its parts cut at the punctuation; stems and accents as in text.
    assert found(alice, "Quarterly-Report_2026.pdf") == ["Quarterly-Report_2026.pdf"]
    assert found(alice, "report 2026") == ["Quarterly-Report_2026.pdf"]
    for part in ("Quarterly-Report", "Quarterly-Report_2026", "Report_2026.pdf", "2026.pdf"):
        assert found(alice, part) == ["Quarterly-Report_2026.pdf"], part
    assert found(alice, "reports") == ["the report is late", "Quarterly-Report_2026.pdf"]
    assert found(alice, "ete agenda") == ["minutes of the meeting · notes été.pdf, agenda.pdf"]
    assert found(alice, "pdf") == [
        "secret-launch-plan.pdf",
        "minutes of the meeting · notes été.pdf, agenda.pdf",
        "Quarterly-Report_2026.pdf",
    ]
    # Names are searched where their messages may be read, no further.
    assert found(bob, "launch") == []
    assert found(bob, "pdf") == [
        "minutes of the meeting · notes été.pdf, agenda.pdf",
        "Quarterly-Report_2026.pdf",
    ]
    # A file deleted on its own (the admin's way) is no longer found; its message is
    # still found by what it still has.
    Attachment.objects.filter(message_id=report).delete()
    Attachment.objects.filter(name="agenda.pdf").delete()
    assert found(alice, "quarterly") == []
    assert found(alice, "agenda") == []
    assert found(alice, "ete") == ["minutes of the meeting · notes été.pdf"]
    alice.close()
    bob.close()


def test_search_reads_only_rooms_one_may_read(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"search": (1000, 1000, 10.0)}
    alice, bob = ChatAccount(server.url, "alice"), ChatAccount(server.url, "bob")
    slug = alice.create_room("Plans", private=True)
    alice.say(slug, "the secret launch date")
    alice.say("lobby", "the public launch party")
    assert found(alice, "launch") == ["the public launch party", "the secret launch date"]
    assert found(bob, "launch") == ["the public launch party"]
    assert found(bob, f"launch in:{slug}") == []
    # Invited, Bob finds it; removed, no more.
    alice.form(f"/rooms/{slug}/invite/", username="bob")
    assert len(found(bob, "launch")) == 2
    alice.form(f"/rooms/{slug}/remove/", username="bob")
    assert found(bob, "launch") == ["the public launch party"]
    # The page too.
    page = bob.client.get("/search/", params={"q": "launch"})
    assert page.status_code == 200
    assert "public <mark>launch</mark> party" in page.text
    assert "secret" not in page.text
    alice.close()
    bob.close()


def test_results_come_a_page_at_a_time(server: LiveServer, settings: Any) -> None:
    settings.CHAT_RATE_LIMITS = {"search": (1000, 1000, 10.0)}
    alice = ChatAccount(server.url, "alice")
    lobby = Room.objects.get(slug="lobby")
    Message.objects.bulk_create(
        [Message(room=lobby, author_name="alice", text=f"standup note {n}") for n in range(45)]
    )
    seen: list[int] = []
    before = None
    pages = 0
    while True:
        params = {"q": "standup", **({"before": before} if before else {})}
        answer = alice.client.get("/api/search/", params=params).json()
        seen += [result["id"] for result in answer["results"]]
        pages += 1
        if not answer["has_more"]:
            break
        before = answer["next_before"]
    assert pages == 3
    assert seen == sorted(Message.objects.values_list("id", flat=True), reverse=True)
    older = alice.client.get("/search/", params={"q": "standup"}).text
    assert f"before={seen[search.PAGE_SIZE - 1]}" in older
    alice.close()


def test_search_errors_say_what_is_wrong(server: LiveServer, settings: Any) -> None:
    alice = ChatAccount(server.url, "alice")
    for params, status in (
        ({"q": ""}, 400),
        ({"q": "   "}, 400),
        ({"q": "x" * 501}, 400),
        ({"q": "in:lobby"}, 400),
        ({"q": "a\x00b"}, 400),
        ({"q": "fine", "before": "x"}, 400),
    ):
        answer = alice.client.get("/api/search/", params=params)
        assert answer.status_code == status, params
        assert answer.json()["error"]
    assert alice.client.get("/search/", params={"q": ""}).status_code == 200
    assert alice.client.get("/search/", params={"q": "in:lobby"}).status_code == 400
    alice.client.cookies.clear()
    assert alice.client.get("/api/search/", params={"q": "x"}).status_code == 401
    assert alice.client.get("/search/", params={"q": "x"}).status_code == 302
    alice.close()
    # Rate limited: 429 with Retry-After, in JSON and on the page.
    settings.CHAT_RATE_LIMITS = {"search": (2, 100, 10.0)}
    bob = ChatAccount(server.url, "bob")
    codes = [bob.client.get("/api/search/", params={"q": "x"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    page = bob.client.get("/search/", params={"q": "x"})
    assert page.status_code == 429
    assert page.headers["Retry-After"]
    bob.close()


def test_a_rare_word_is_found_through_the_gin_index(server: LiveServer) -> None:
    """With words as people use them (a few common, many rare), PostgreSQL's statistics
    lead a rare word to the GIN index rather than a walk of every message."""
    lobby = Room.objects.get(slug="lobby")
    chance = random.Random(22)
    vocabulary = [f"word{n}" for n in range(2000)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    Message.objects.bulk_create(
        [
            Message(
                room=lobby, author_name="a", text=" ".join(chance.choices(vocabulary, weights, k=8))
            )
            for _ in range(30_000)
        ],
        batch_size=5000,
    )
    Message.objects.create(room=lobby, author_name="a", text="a zeppelin passed")
    with connection.cursor() as cursor:
        # The bulk insert left its entries in the GIN index's pending list, which the planner
        # counts as the index's cost until autovacuum merges it (whenever it runs): merge it.
        cursor.execute("SELECT gin_clean_pending_list('chat_message_search')")
        cursor.execute("ANALYZE chat_message")
        cursor.execute(
            "EXPLAIN SELECT id FROM chat_message m WHERE m.search_vector @@"
            " websearch_to_tsquery('chat_search', %s) ORDER BY id DESC LIMIT 21",
            ["zeppelin"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "chat_message_search" in plan, plan
