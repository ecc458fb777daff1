"""Attachments over real HTTP (real uvicorn, real PostgreSQL, files through Django's storage
API): types judged by the bytes, images checked and previewed, files served so that
nothing in them runs, private rooms' files 404 to outsiders, limits on size, count,
pixels, bodies and uploads."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from chat.models import Attachment, Message
from chat.uploads import clean_name
from pgsse.models import Event
from tests.attachment_files import HTML_WITH_SCRIPT, PDF, SVG_WITH_SCRIPT, dimensions, image
from tests.chat_accounts import PASSWORD, ChatAccount
from tests.servers import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

REPOSITORY = Path(__file__).resolve().parent.parent

File = tuple[str, bytes, str]


def post(
    person: ChatAccount, room: str, files: list[File], text: str | None = "look"
) -> httpx.Response:
    """The page's multipart post: ``text`` and ``file`` fields, as a browser sends them."""
    data = {} if text is None else {"text": text}
    return person.client.post(
        f"/api/rooms/{room}/messages/",
        data=data,
        files=[("file", file) for file in files],
        headers={"X-CSRFToken": person.csrf_token},
    )


def stored_files() -> list[Path]:
    root = Path(django_settings.MEDIA_ROOT)
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture(autouse=True)
def _no_files_before() -> None:
    """Each test starts with no stored file (the database's flush deletes rows, not files)."""
    shutil.rmtree(django_settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture
def alice(server: LiveServer) -> Iterator[ChatAccount]:
    person = ChatAccount(server.url, "alice")
    yield person
    person.close()


def test_an_image_is_known_by_its_bytes_checked_and_previewed(alice: ChatAccount) -> None:
    photo = image("PNG", (1200, 900))
    # Named and sent as text: the bytes say PNG, so it is a PNG.
    response = post(alice, "lobby", [("holiday.txt", photo, "text/plain")])
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["text"] == "look"
    [attached] = message["attachments"]
    assert attached["name"] == "holiday.txt"
    assert attached["type"] == "image/png"
    assert attached["size"] == len(photo)
    assert attached["url"] == f"/api/attachments/{attached['id']}/"
    assert attached["image"]["width"] == 1200
    assert attached["image"]["height"] == 900
    assert attached["image"]["preview"] == f"/api/attachments/{attached['id']}/preview/"
    # The history and the message's event carry the same.
    history = alice.api("GET", "/api/rooms/lobby/messages/").json()["messages"]
    assert history[-1]["attachments"] == [attached]

    original = alice.client.get(attached["url"])
    assert original.status_code == 200
    assert original.content == photo
    assert original.headers["content-type"] == "image/png"
    assert original.headers["content-disposition"] == 'inline; filename="holiday.txt"'
    assert original.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert original.headers["x-content-type-options"] == "nosniff"
    assert original.headers["content-length"] == str(len(photo))
    preview = alice.client.get(attached["image"]["preview"])
    assert preview.status_code == 200
    assert preview.headers["content-type"] == "image/webp"
    assert dimensions(preview.content) == (640, 480)
    head = alice.client.head(attached["url"])
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(photo))
    assert head.content == b""
    # Stored under names of its own, never the one it was posted with.
    names = [path.name for path in stored_files()]
    assert names == sorted(
        [uuid.UUID(attached["id"]).hex, f"{uuid.UUID(attached['id']).hex}.preview.webp"]
    )


def test_small_images_are_their_own_preview_and_turned_ones_report_how_they_show(
    alice: ChatAccount,
) -> None:
    small = image("GIF", (100, 80))
    turned = image("JPEG", (800, 600), orientation=6)  # shown a quarter turned: 600 wide
    response = post(
        alice, "lobby", [("a.gif", small, "image/gif"), ("b.jpg", turned, "image/jpeg")]
    )
    assert response.status_code == 201, response.text
    gif, jpeg = response.json()["attachments"]
    assert gif["image"] == {"width": 100, "height": 80, "preview": gif["url"]}
    assert (jpeg["image"]["width"], jpeg["image"]["height"]) == (600, 800)
    preview = alice.client.get(jpeg["image"]["preview"])
    assert dimensions(preview.content) == (360, 480)  # upright, within 640 by 480


@pytest.mark.parametrize(
    ("name", "data", "claimed", "sniffed"),
    [
        ("drawing.svg", SVG_WITH_SCRIPT, "image/svg+xml", "application/octet-stream"),
        ("page.png", HTML_WITH_SCRIPT, "image/png", "application/octet-stream"),
        ("page.html", HTML_WITH_SCRIPT, "text/html", "application/octet-stream"),
        ("report", PDF, "application/octet-stream", "application/pdf"),
    ],
)
def test_other_files_are_downloads_whatever_they_claim(
    alice: ChatAccount, name: str, data: bytes, claimed: str, sniffed: str
) -> None:
    response = post(alice, "lobby", [(name, data, claimed)], text="")
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["text"] == ""  # a message may be its files alone
    [attached] = message["attachments"]
    assert (attached["type"], attached["image"]) == (sniffed, None)
    download = alice.client.get(attached["url"])
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert download.headers["content-security-policy"] == "default-src 'none'; sandbox"
    preview = alice.client.get(f"{attached['url']}preview/")
    assert preview.status_code == 404
    assert "not an image" in preview.json()["error"]


def test_names_are_cleaned_and_non_ascii_ones_offered_as_such(alice: ChatAccount) -> None:
    assert clean_name("C:\\Users\\me\\photo\u202egnp.exe") == "photognp.exe"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("  a \t b\n.txt ") == "a b .txt"
    assert clean_name("\x00\x01") == "file"
    long = clean_name("x" * 300 + ".jpeg")
    assert len(long) == 200
    assert long.endswith(".jpeg")
    response = post(alice, "lobby", [("Été 2026.pdf", PDF, "application/pdf")])
    [attached] = response.json()["attachments"]
    download = alice.client.get(attached["url"])
    assert download.headers["content-disposition"] == (
        "attachment; filename*=utf-8''%C3%89t%C3%A9%202026.pdf"
    )


def refused(response: httpx.Response, status: int, says: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert says in response.json()["error"]


def test_what_is_refused_is_neither_stored_nor_posted(alice: ChatAccount, settings: Any) -> None:
    settings.CHAT_ATTACHMENT_MAX_BYTES = 20_000
    settings.CHAT_IMAGE_MAX_PIXELS = 100 * 100
    png = image("PNG", (90, 90))
    cases = [
        ([("big.bin", b"x" * 20_001, "application/octet-stream")], 413, "'big.bin' is 19.5"),
        ([("a.png", png, "image/png")] * 5, 400, "at most 4 files; this one has 5"),
        ([("empty.txt", b"", "text/plain")], 400, "'empty.txt' is empty"),
        ([("cut.png", png[: len(png) // 2], "image/png")], 400, "not a readable PNG image"),
        ([("huge.png", image("PNG", (101, 100)), "image/png")], 413, "at most 10,000 pixels"),
    ]
    for files, status, says in cases:
        refused(post(alice, "lobby", files), status, says)
    wrong_field = alice.client.post(
        "/api/rooms/lobby/messages/",
        data={"text": "hi"},
        files=[("upload", ("a.png", png, "image/png"))],
        headers={"X-CSRFToken": alice.csrf_token},
    )
    refused(wrong_field, 400, "fields named 'file', not 'upload'")
    # No text and no file: still an empty message.
    refused(post(alice, "lobby", [], text=" "), 400, "cannot be empty")
    assert Message.objects.count() == 0
    assert Attachment.objects.count() == 0
    assert stored_files() == []


def test_uploads_are_rate_limited_before_anything_is_stored(
    alice: ChatAccount, settings: Any
) -> None:
    settings.CHAT_RATE_LIMITS = {"upload": (3, 30, 60.0)}
    files = [("a.pdf", PDF, "application/pdf")] * 2
    assert post(alice, "lobby", files).status_code == 201
    refused(post(alice, "lobby", files), 429, "Too many files: at most 3 every 60 seconds")
    assert Attachment.objects.count() == 2
    assert len(stored_files()) == 2


def test_bodies_past_the_limit_are_refused_before_they_are_read(
    server: LiveServer, alice: ChatAccount, settings: Any
) -> None:
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000
    settings.CHAT_ATTACHMENTS_PER_MESSAGE = 1
    limit = 1000 + 1024 * 1024
    big = [("big.bin", b"x" * (limit + 1), "application/octet-stream")]
    refused(post(alice, "lobby", big), 413, "the chat reads at most 1.0")

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"y" * (limit // 2)

    # Without Content-Length (chunked): refused once it grows past the limit.
    chunked = alice.client.post(
        "/api/rooms/lobby/messages/",
        content=chunks(),
        headers={"X-CSRFToken": alice.csrf_token, "Content-Type": "application/octet-stream"},
    )
    refused(chunked, 413, "the chat reads at most")
    # Within the limit, the view's own check answers, per file.
    refused(post(alice, "lobby", [("b.bin", b"x" * 1001, "application/octet-stream")]), 413, "1000")
    assert Message.objects.count() == 0


def test_a_private_rooms_files_are_not_found_by_outsiders(
    server: LiveServer, alice: ChatAccount
) -> None:
    bob = ChatAccount(server.url, "bob")
    private = alice.create_room("Plans", private=True)
    response = post(alice, private, [("plan.png", image(), "image/png")])
    [attached] = response.json()["attachments"]
    unknown = f"/api/attachments/{uuid.uuid4()}/"
    for path in (attached["url"], attached["image"]["preview"], unknown):
        refused(bob.client.get(path), 404, "(or its room is private)")
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get(attached["url"]).status_code == 401
    # A bot with a token of a member reads it.
    out = io.StringIO()
    call_command("chat_token", "alice", stdout=out)
    token = out.getvalue().strip().split()[-1]
    with httpx.Client(base_url=server.url) as bot:
        got = bot.get(attached["url"], headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200
    # Invited, bob sees it.
    assert alice.form(f"/rooms/{private}/invite/", username="bob").status_code == 302
    assert bob.client.get(attached["url"]).status_code == 200
    bob.close()


def test_deleting_the_message_deletes_its_files(alice: ChatAccount) -> None:
    response = post(alice, "lobby", [("p.png", image("PNG", (800, 600)), "image/png")])
    message = response.json()
    assert len(stored_files()) == 2  # the image and its preview
    assert alice.api("DELETE", f"/api/rooms/lobby/messages/{message['id']}/").status_code == 204
    assert alice.client.get(message["attachments"][0]["url"]).status_code == 404
    assert Attachment.objects.count() == 0
    assert stored_files() == []


def test_a_message_with_files_may_be_edited_to_no_text(alice: ChatAccount) -> None:
    with_file = post(alice, "lobby", [("r.pdf", PDF, "application/pdf")]).json()
    edited = alice.api("PATCH", f"/api/rooms/lobby/messages/{with_file['id']}/", {"text": ""})
    assert edited.status_code == 200, edited.text
    assert edited.json()["text"] == ""
    assert edited.json()["attachments"] == with_file["attachments"]
    plain = alice.api("POST", "/api/rooms/lobby/messages/", {"text": "hi"}).json()
    emptied = alice.api("PATCH", f"/api/rooms/lobby/messages/{plain['id']}/", {"text": " "})
    refused(emptied, 400, "cannot be empty")


def test_a_reply_carries_files_and_a_reply_to_files_alone_quotes_their_names(
    alice: ChatAccount,
) -> None:
    files = [("chart.png", image(), "image/png"), ("plan.pdf", PDF, "application/pdf")]
    alone = post(alice, "lobby", files, text=None).json()

    def reply(room: str, to: int) -> httpx.Response:
        return alice.client.post(
            f"/api/rooms/{room}/messages/",
            data={"text": "the numbers", "reply_to": str(to)},
            files=[("file", ("report.pdf", PDF, "application/pdf"))],
            headers={"X-CSRFToken": alice.csrf_token},
        )

    response = reply("lobby", alone["id"])
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [file["name"] for file in answer["attachments"]] == ["report.pdf"]
    excerpt = "📎 chart.png, plan.pdf"
    assert answer["reply_to"] == {"id": alone["id"], "user": "alice", "excerpt": excerpt}
    assert answer["thread"]["id"] == alone["id"]
    assert answer["thread"]["replies"] == 1
    # The thread shows the files of its first message and of its replies.
    thread = alice.api("GET", f"/api/rooms/lobby/messages/{alone['id']}/thread/").json()
    assert thread["root"]["attachments"] == alone["attachments"]
    assert [each["attachments"] for each in thread["replies"]] == [answer["attachments"]]
    # The reply's event carries its files (and, as every reply's event, no excerpt).
    created = Event.objects.filter(type="message_created").order_by("-id").first()
    assert created is not None
    data = json.loads(created.data)
    assert data["attachments"] == answer["attachments"]
    assert data["reply_to"] == {"id": alone["id"], "user": "alice"}
    # A reply to a message of another room is refused, and its files are not kept.
    elsewhere = alice.create_room("Elsewhere")
    refused(reply(elsewhere, alone["id"]), 404, "to reply to")
    assert Attachment.objects.count() == 3
    assert len(stored_files()) == 3  # the small image is its own preview


def test_only_the_storage_api_is_used(alice: ChatAccount, settings: Any) -> None:
    """A deployment's object store works as the folder does: nothing here reads a path."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    photo = image("JPEG", (1000, 700))
    [attached] = post(alice, "lobby", [("p.jpg", photo, "image/jpeg")]).json()["attachments"]
    assert alice.client.get(attached["url"]).content == photo
    assert dimensions(alice.client.get(attached["image"]["preview"]).content) == (640, 448)
    folders, _ = default_storage.listdir("attachments")
    assert folders == [uuid.UUID(attached["id"]).hex[:2]]
    assert stored_files() == []


def test_a_moderator_deletes_one_file_and_its_message_shows_it_gone(
    server: LiveServer, alice: ChatAccount
) -> None:
    files = [("a.pdf", PDF, "application/pdf"), ("b.png", image(), "image/png")]
    message = post(alice, "lobby", files).json()
    first, second = message["attachments"]
    User.objects.create_superuser("root", password=PASSWORD)
    root = ChatAccount(server.url, "root", signup=False)
    page = root.client.get("/admin/chat/attachment/")
    assert page.status_code == 200
    assert "a.pdf" in page.text
    assert "b.png" in page.text
    # Deleted in the admin, as a moderator does.
    delete = f"/admin/chat/attachment/{first['id']}/delete/"
    assert root.client.get(delete).status_code == 200
    done = root.client.post(delete, data={"post": "yes", "csrfmiddlewaretoken": root.csrf_token})
    assert done.status_code == 302
    assert Message.objects.get(pk=message["id"]).attachments == [second]
    assert alice.client.get(first["url"]).status_code == 404
    assert alice.client.get(second["url"]).status_code == 200
    assert len(stored_files()) == 1  # b.png is its own preview
    # The change reached the room's channel, without the file.
    updated = Event.objects.filter(type="message_updated").order_by("-id").first()
    assert updated is not None
    assert json.loads(updated.data)["attachments"] == [second]
    root.close()


def test_make_run_keeps_attachments_beside_its_database(tmp_path: Path) -> None:
    """Under ``make run`` (no DJANGO_MEDIA_ROOT) files go to ``.pgdata/media``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(DJANGO_DEBUG="1", DATABASE_URL="postgresql://nobody@localhost/none")
    shown = subprocess.run(
        [sys.executable, "-c", "from chatsite import settings; print(settings.MEDIA_ROOT)"],
        cwd=REPOSITORY / "demo",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(shown.stdout.strip()) == REPOSITORY / ".pgdata" / "media"


def test_files_no_message_has_are_pruned_after_a_grace_time(alice: ChatAccount) -> None:
    kept = post(alice, "lobby", [("kept.pdf", PDF, "application/pdf")]).json()
    # What a process that died between the write and the commit leaves behind.
    orphan = default_storage.save(f"attachments/ab/{uuid.uuid4().hex}", ContentFile(b"x"))
    out = io.StringIO()
    call_command("chat_prune_files", stdout=out)
    assert out.getvalue().strip() == "0 files deleted."  # too young: maybe still committing
    call_command("chat_prune_files", "--grace-minutes=0", stdout=out)
    assert f"deleted {orphan}" in out.getvalue()
    assert not default_storage.exists(orphan)
    assert alice.client.get(kept["attachments"][0]["url"]).status_code == 200
    assert len(stored_files()) == 1
