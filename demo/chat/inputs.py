"""Reading what clients send: JSON or form bodies, texts, names, ids.

Everything here refuses bad input with an :class:`~chat.errors.ApiError` saying what is
accepted, before it can reach PostgreSQL (which refuses NUL characters in text, and whose
driver cannot encode lone surrogates) or Python's limits (deep nesting, huge integers).
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

from chat.errors import ApiError
from chat.models import MAX_MESSAGE_LENGTH


def clean_string(value: str, what: str) -> str:
    """``value`` if PostgreSQL can store it as text: no NUL, no lone surrogate."""
    if "\x00" in value:
        raise ApiError(400, f"{what} cannot contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"{what} is not valid Unicode text (a lone surrogate).") from exc
    return value


def body(request: HttpRequest) -> dict[str, Any]:
    """A JSON object body, or form fields (the page's forms and beacons send those)."""
    if request.content_type != "application/json":
        fields = request.POST.dict()
        return {key: clean_string(value, f"Field {key!r}") for key, value in fields.items()}
    raw = request.body or b"null"
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "The body is not UTF-8 JSON.") from exc
    except RecursionError as exc:
        raise ApiError(400, "The body's JSON is nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise ApiError(400, f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "Send a JSON object.")
    return data


def message_text(data: dict[str, Any], *, with_files: bool = False) -> str:
    """The message's text; it may be left out, or blank, when the message has files."""
    text = data.get("text", "" if with_files else None)
    if not isinstance(text, str):
        raise ApiError(400, 'Send the message as {"text": "..."}.')
    clean_string(text, "A message")
    if not text.strip():
        if with_files:
            return ""
        raise ApiError(400, "A message cannot be empty.")
    if len(text) > MAX_MESSAGE_LENGTH:
        raise ApiError(
            413, f"A message is at most {MAX_MESSAGE_LENGTH} characters; this one is {len(text)}."
        )
    return text


def query_integer(request: HttpRequest, name: str, default: int | None) -> int | None:
    value = request.GET.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(400, f"'{name}' must be a positive integer.")
    return int(value)


def optional_id(data: dict[str, Any], name: str) -> int:
    """A message id in the body (0 when absent)."""
    value = data.get(name, 0)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ApiError(400, f"'{name}' must be a message id (a positive integer).")
    return int(value)


def query_ids(request: HttpRequest, name: str, limit: int) -> list[int] | None:
    """``?name=3,17``: at most ``limit`` ids, each once (None when absent)."""
    value = request.GET.get(name)
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) > limit or not all(is_id_text(part) for part in parts):
        raise ApiError(
            400, f"'{name}' is a comma-separated list of at most {limit} ids, like '3,17'."
        )
    return list(dict.fromkeys(int(part) for part in parts))


def is_id_text(value: str) -> bool:
    """Whether ``value`` is a positive integer PostgreSQL's bigint holds, in ASCII digits."""
    return value.isascii() and value.isdigit() and len(value) <= 18
