"""``@username`` mentions in a message's text."""

from __future__ import annotations

import re

#: ``@`` then a username (Django's characters: letters, digits and ``@.+-_``), not inside
#: a word or an e-mail address; a trailing dot ends a sentence, not the name.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]+)")


def mentioned(text: str) -> list[str]:
    """The usernames mentioned in ``text``, each once, in order."""
    names: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".")
        if name and name not in names:
            names.append(name)
    return names[:50]
