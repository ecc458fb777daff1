"""Attachments kept through Django's storage API (``default_storage``), and their rows.

Only the storage API is used (``save``, ``open``, ``delete``, never a path), so a
deployment that sets ``STORAGES["default"]`` to an object store keeps its files there;
``make run`` keeps them under ``.pgdata/media/``. Storage names come from the attachment's
random id alone: nothing the client sent names a stored file.

Files are written before the message's transaction and deleted again if it fails
(storage is not transactional, and an object store's write may take a while: no database
lock is held meanwhile). An attachment's files are deleted when its row's deletion
commits: with its message, its room, or in the admin. A process that dies in between
(after the write, before the commit; after the commit, before the deletion) leaves files
no row names: :func:`prune_orphans` (``manage.py chat_prune_files``) deletes them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from chat.models import Attachment, Message
from chat.uploads import PREVIEW_FORMAT, CheckedFile

logger = logging.getLogger("chat.attachments")

FOLDER = "attachments"


def storage_name(checked: CheckedFile, preview: bool = False) -> str:
    # Two hex digits of fan-out keep a folder-backed storage's folders small.
    hex_id = checked.id.hex
    suffix = f".preview.{PREVIEW_FORMAT.lower()}" if preview else ""
    return f"{FOLDER}/{hex_id[:2]}/{hex_id}{suffix}"


def public_data(checked: CheckedFile) -> dict[str, Any]:
    """What a message's events and the API show of a file (kept with the message)."""
    url = reverse("chat:api_attachment", args=[checked.id])
    image = None
    if checked.image is not None:
        preview = url
        if checked.image.preview is not None:
            preview = reverse("chat:api_attachment_preview", args=[checked.id])
        image = {"width": checked.image.width, "height": checked.image.height, "preview": preview}
    return {
        "id": str(checked.id),
        "name": checked.name,
        "type": checked.content_type,
        "size": checked.size,
        "url": url,
        "image": image,
    }


@contextmanager
def stored(files: list[CheckedFile]) -> Iterator[None]:
    """Write ``files`` (and their previews) to storage; delete them again if the block
    raises (the message's transaction failed, or was refused)."""
    written: list[str] = []
    try:
        for checked in files:
            checked.content.seek(0)
            written.append(default_storage.save(storage_name(checked), checked.content))
            if checked.image is not None and checked.image.preview is not None:
                preview = ContentFile(checked.image.preview)
                written.append(default_storage.save(storage_name(checked, True), preview))
        yield
    except BaseException:
        _delete(written)
        raise


def record(message: Message, files: list[CheckedFile]) -> None:
    """The rows of ``files``, posted with ``message`` (in the message's transaction)."""
    Attachment.objects.bulk_create(
        Attachment(
            id=checked.id,
            message=message,
            name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            file=storage_name(checked),
            preview=(
                storage_name(checked, True)
                if checked.image is not None and checked.image.preview is not None
                else ""
            ),
            width=checked.image.width if checked.image else None,
            height=checked.image.height if checked.image else None,
        )
        for checked in files
    )


def _delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # a file left behind must not undo what was deleted
            logger.exception("Could not delete the stored file %s", name)


def _deleted_alone(origin: object) -> bool:
    """Whether a deletion started from attachments (the admin's), not from their message
    or room."""
    if isinstance(origin, QuerySet):
        return origin.model is Attachment
    return isinstance(origin, Attachment)


@receiver(post_delete, sender=Attachment)
def files_deleted(sender: type[Attachment], instance: Attachment, **kwargs: Any) -> None:
    """An attachment's files go when its deletion commits (never before: a rolled-back
    deletion keeps them). Deleted on its own, it leaves its message, live: the message is
    saved without it, which publishes the change (chat.signals)."""
    names = [name for name in (instance.file.name, instance.preview.name) if name]
    transaction.on_commit(lambda: _delete(names))
    if _deleted_alone(kwargs.get("origin")):
        message = Message.objects.select_for_update().filter(pk=instance.message_id).first()
        if message is not None:
            kept = [data for data in message.attachments if data.get("id") != str(instance.pk)]
            message.attachments = kept
            message.save(update_fields=["attachments"])


#: Files younger than this are never pruned: their message may still be committing.
ORPHAN_GRACE = timedelta(hours=1)


def stored_names() -> Iterator[str]:
    """Every stored attachment file (and preview), by its storage name."""
    folders, _ = default_storage.listdir(FOLDER)
    for folder in sorted(folders):
        _, files = default_storage.listdir(f"{FOLDER}/{folder}")
        for name in sorted(files):
            yield f"{FOLDER}/{folder}/{name}"


def _attachment_id(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(name.rsplit("/", 1)[-1].split(".", 1)[0])
    except ValueError:
        return None


def prune_orphans(grace: timedelta = ORPHAN_GRACE) -> list[str]:
    """Delete the stored files that no attachment names, older than ``grace``; return
    their names. Only the storage API is used, so an object store is pruned alike."""
    if not default_storage.exists(FOLDER):
        return []
    cutoff = timezone.now() - grace
    pruned = []
    for name in stored_names():
        file_id = _attachment_id(name)
        if file_id is not None and Attachment.objects.filter(pk=file_id).exists():
            continue
        if default_storage.get_modified_time(name) > cutoff:
            continue
        default_storage.delete(name)
        pruned.append(name)
    return pruned
