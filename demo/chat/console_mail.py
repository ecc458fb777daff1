"""The e-mail backend of ``make run``: messages printed in the terminal, readable.

Django's console backend prints a message as it would travel. From Django 6.1 that is
quoted-printable for any line over 78 characters, so a password reset link is cut across
lines with ``=`` and cannot be followed. This one prints the headers and the text as
people read them (the plain-text part, decoded), on Django 5.2 and 6.x alike.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

from django.core.mail.backends import console

#: Headers about the message's wire encoding: meaningless once the text is decoded.
_ENCODING_HEADERS = {"content-transfer-encoding", "mime-version"}


class EmailBackend(console.EmailBackend):
    def write_message(self, message: Any) -> None:
        mime = message.message()
        for name, value in mime.items():
            if name.lower() not in _ENCODING_HEADERS:
                self.stream.write(f"{name}: {value}\n")
        self.stream.write(f"\n{plain_text(mime)}\n")
        self.stream.write("-" * 79 + "\n")


def plain_text(mime: Message) -> str:
    """The first plain-text part of ``mime``, decoded ("" if it has none)."""
    for part in mime.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""
