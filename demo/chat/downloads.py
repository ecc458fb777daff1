"""Attachments served to those who may read their room, and served so that nothing in
them can run on the chat's origin.

- Anyone who may not read the room gets 404, as for an attachment that does not exist
  (private rooms stay invisible); anonymous visitors 401 (unless ``CHAT_ANONYMOUS_READ``).
- Images of the formats checked at upload (chat.uploads) are shown inline with their own
  type. Every other file is sent as ``application/octet-stream`` with
  ``Content-Disposition: attachment``: a browser saves it, never renders it, whatever it
  holds (an HTML page, an SVG drawing with a script).
- ``Content-Security-Policy: default-src 'none'; sandbox`` on every file: even opened on
  its own, nothing in it runs or loads; ``nosniff`` keeps browsers from guessing a type.
- The bytes are streamed from storage in chunks, read in a worker thread: no file is
  held in memory whole, and a download holds no thread while the client reads.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header

from chat import access, conf
from chat.auth import reader
from chat.errors import ApiError, api_view, not_authenticated
from chat.models import Attachment
from chat.uploads import IMAGE_FORMATS, PREVIEW_TYPE, UNKNOWN_TYPE

CHUNK_BYTES = 64 * 1024
#: Files never change once posted; a browser keeps what it was allowed to see.
CACHE_CONTROL = "private, max-age=86400"
SANDBOX = "default-src 'none'; sandbox"


@api_view(["GET", "HEAD"])
def original(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponseBase:
    """The file as posted: an image inline, anything else as a download."""
    attachment = _readable(request, attachment_id)
    image = attachment.content_type in IMAGE_FORMATS and attachment.is_image
    content_type = attachment.content_type if image else UNKNOWN_TYPE
    return _serve(request, attachment, _stored_name(attachment.file), content_type, inline=image)


@api_view(["GET", "HEAD"])
def preview(request: HttpRequest, attachment_id: uuid.UUID) -> HttpResponseBase:
    """An image's preview (the image itself when it is small)."""
    attachment = _readable(request, attachment_id)
    if not attachment.is_image:
        raise ApiError(404, f"Attachment {attachment_id} is not an image: it has no preview.")
    if not attachment.preview.name:
        original_name = _stored_name(attachment.file)
        return _serve(request, attachment, original_name, attachment.content_type, True)
    return _serve(request, attachment, _stored_name(attachment.preview), PREVIEW_TYPE, inline=True)


def _stored_name(stored: FieldFile) -> str:
    """The storage name of a saved attachment's file (a file field of one never lacks it:
    the attachment and its file are saved together)."""
    name: str | None = stored.name
    if not name:
        raise ApiError(404, "This attachment's file is gone.")
    return name


def _readable(request: HttpRequest, attachment_id: uuid.UUID) -> Attachment:
    user = reader(request)
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        raise not_authenticated()
    attachment = Attachment.objects.select_related("message__room").filter(pk=attachment_id).first()
    if attachment is None or not access.can_read(user, attachment.message.room):
        raise ApiError(404, f"There is no attachment {attachment_id} (or its room is private).")
    return attachment


def _serve(
    request: HttpRequest, attachment: Attachment, name: str, content_type: str, inline: bool
) -> HttpResponseBase:
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise ApiError(404, f"The file of attachment {attachment.pk} is gone.") from exc
    response: HttpResponseBase
    if request.method == "HEAD":
        handle.close()
        response = HttpResponse(content_type=content_type)
    else:
        response = StreamingHttpResponse(_chunks(handle), content_type=content_type)
        # Closed with the response, even one whose body was never read (a client gone).
        response._resource_closers.append(handle.close)  # type: ignore[attr-defined]
    size = getattr(handle, "size", None)
    if size is not None:
        response["Content-Length"] = str(size)
    disposition = content_disposition_header(not inline, attachment.name)
    if disposition is not None:
        response["Content-Disposition"] = disposition
    response["Content-Security-Policy"] = SANDBOX
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = CACHE_CONTROL
    return response


async def _chunks(handle: IO[bytes]) -> AsyncIterator[bytes]:
    read = sync_to_async(handle.read, thread_sensitive=False)
    while chunk := await read(CHUNK_BYTES):
        yield chunk
