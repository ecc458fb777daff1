"""Files for the attachment tests, made here: images by Pillow, and files whose names or
claimed types lie about what their bytes are."""

from __future__ import annotations

import io

from PIL import Image

SVG_WITH_SCRIPT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>"
)
HTML_WITH_SCRIPT = b"<!doctype html><title>x</title><script>alert(document.cookie)</script>"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def image(
    kind: str = "PNG", size: tuple[int, int] = (64, 48), orientation: int | None = None
) -> bytes:
    """An image of ``size`` in format ``kind``; with an EXIF ``orientation`` (JPEG)."""
    picture = Image.new("RGB", size, (30, 120, 200))
    # Detail, so that a large image stays large once compressed.
    for x in range(0, size[0], 7):
        for y in range(0, size[1], 5):
            picture.putpixel((x, y), ((x * 13) % 256, (y * 7) % 256, (x * y) % 256))
    out = io.BytesIO()
    options = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    picture.save(out, kind, **options)
    return out.getvalue()


def dimensions(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.size
