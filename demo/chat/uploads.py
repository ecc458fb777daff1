"""What a posted file is, judged by its bytes: its size, its name, its type, and for an
image its dimensions and preview.

Nothing the client says is trusted. The name is kept only to be shown and offered when
downloading (cleaned of control and text-direction characters: ``photo\u202egnp.exe``
shows as what it is); the browser's ``Content-Type`` is ignored; the type is what the
bytes are (``filetype``'s signatures). A file whose bytes say PNG, JPEG, GIF or WebP must
open as exactly that in Pillow, within ``CHAT_IMAGE_MAX_PIXELS``, and gets a preview;
any other file is one to download, served as ``application/octet-stream`` whatever it is
(chat.downloads). An HTML page or an SVG drawing has no signature: it is such a file.
"""

from __future__ import annotations

import io
import unicodedata
import uuid
import warnings
from dataclasses import dataclass

import filetype
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps, features

from chat import conf
from chat.errors import ApiError

# (``UploadedFile`` is generic in django-stubs for Django 6, not in those for 5.2: its
# annotations below ignore the missing type argument under both.)

#: The images shown inline, by the type their bytes say, and Pillow's name for each.
IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
#: A file whose bytes match no known signature.
UNKNOWN_TYPE = "application/octet-stream"
#: The form field (repeated) that carries a message's files.
FIELD = "file"
#: Bytes read to tell the type (what ``filetype`` looks at).
SNIFF_BYTES = 8192
#: Longest name kept, in characters.
MAX_NAME = 200
#: A preview fits in this box; an image that does already, and is this small, is its own.
PREVIEW_BOX = (640, 480)
SMALL_IMAGE_BYTES = 512 * 1024
PREVIEW_FORMAT, PREVIEW_TYPE = (
    ("WEBP", "image/webp") if features.check("webp") else ("PNG", "image/png")
)
#: EXIF's orientation tag: 5 to 8 turn the picture a quarter, swapping width and height.
ORIENTATION = 0x0112
#: Unicode categories dropped from names: controls, format (direction overrides), private,
#: surrogates.
DROPPED = {"Cc", "Cf", "Co", "Cs"}


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    #: The preview's bytes (PREVIEW_FORMAT), or None when the image is its own preview.
    preview: bytes | None


@dataclass(frozen=True)
class CheckedFile:
    """A posted file, checked, with the id it will be stored and served under."""

    id: uuid.UUID
    name: str
    content_type: str
    size: int
    content: UploadedFile  # type: ignore[type-arg, unused-ignore]
    image: ImageFacts | None


def posted_files(request: HttpRequest) -> list[UploadedFile]:  # type: ignore[type-arg, unused-ignore]
    """The files of a multipart message, unchecked (none for a JSON one); refuses too
    many, or files in other fields."""
    if request.content_type != "multipart/form-data":
        return []
    others = sorted(set(request.FILES) - {FIELD})
    if others:
        raise ApiError(400, f"Send files in fields named {FIELD!r}, not {others[0]!r}.")
    files = request.FILES.getlist(FIELD)
    most = int(conf.get("CHAT_ATTACHMENTS_PER_MESSAGE"))
    if len(files) > most:
        raise ApiError(400, f"A message has at most {most} files; this one has {len(files)}.")
    return files


def check(uploaded: UploadedFile) -> CheckedFile:  # type: ignore[type-arg, unused-ignore]
    """``uploaded`` judged by its bytes; refuses (400, 413) one that is not acceptable."""
    name = clean_name(uploaded.name)
    size = int(uploaded.size or 0)
    largest = int(conf.get("CHAT_ATTACHMENT_MAX_BYTES"))
    if size > largest:
        raise ApiError(
            413, f"{name!r} is {filesizeformat(size)}; a file is at most {filesizeformat(largest)}."
        )
    if size == 0:
        raise ApiError(400, f"{name!r} is empty.")
    uploaded.seek(0)
    head = uploaded.read(SNIFF_BYTES)
    uploaded.seek(0)
    content_type = filetype.guess_mime(head) or UNKNOWN_TYPE
    image = None
    if content_type in IMAGE_FORMATS:
        image = examine_image(uploaded, name, content_type, size)
    return CheckedFile(uuid.uuid4(), name, content_type, size, uploaded, image)


def clean_name(raw: str | None) -> str:
    """The name to show: its last path part, without control or direction characters,
    spaces collapsed, at most MAX_NAME characters (keeping the extension)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split())  # tabs and line breaks become spaces, not nothing
    name = "".join(char for char in name if unicodedata.category(char) not in DROPPED).strip()
    if len(name) > MAX_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: MAX_NAME - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_NAME]
    return name or "file"


class _TooManyPixels(Exception):
    pass


def examine_image(
    source: UploadedFile,  # type: ignore[type-arg, unused-ignore]
    name: str,
    content_type: str,
    size: int,
) -> ImageFacts:
    """An image's dimensions (as shown, EXIF orientation applied) and preview; refuses one
    that Pillow cannot read as the format its bytes announce, or one too large to decode."""
    expected = IMAGE_FORMATS[content_type]
    most = int(conf.get("CHAT_IMAGE_MAX_PIXELS"))
    width = height = 0
    try:
        # A decompression-bomb warning, a truncated file's: refused, not shown half read.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Image.open(source, formats=[expected]) as image:
                width, height = image.size
                if width * height > most:
                    raise _TooManyPixels
                image.verify()
            source.seek(0)
            with Image.open(source, formats=[expected]) as image:
                if image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
                    width, height = height, width
                # Browsers apply EXIF orientation themselves: a small image shows upright.
                fits = width <= PREVIEW_BOX[0] and height <= PREVIEW_BOX[1]
                preview = None if fits and size <= SMALL_IMAGE_BYTES else preview_of(image)
    except (_TooManyPixels, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(
            413,
            f"{name!r} is too large an image ({width} by {height} pixels); "
            f"an image has at most {most:,} pixels.",
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, Warning) as exc:
        raise ApiError(
            400, f"{name!r} is not a readable {expected} image, though it begins like one."
        ) from exc
    finally:
        source.seek(0)
    return ImageFacts(width, height, preview)


def preview_of(image: Image.Image) -> bytes:
    """A copy that fits PREVIEW_BOX, upright, without metadata (GIF: its first frame)."""
    if image.format == "JPEG":
        image.draft("RGB", PREVIEW_BOX)  # decode at a fraction of the size: much faster
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail(PREVIEW_BOX)
    if upright.mode not in ("RGB", "RGBA"):
        upright = upright.convert("RGBA" if upright.has_transparency_data else "RGB")
    out = io.BytesIO()
    upright.save(out, PREVIEW_FORMAT, quality=80)
    return out.getvalue()
