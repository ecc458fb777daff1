"""Chat users with accounts, for tests: sign up over HTTP, then post, call the API, stream.

``ChatAccount`` posts, says and closes like a browser session, logged in with a real
session and CSRF token, plus a JSON API helper and a stream client carrying the session.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.clients import stream_client

#: Passes Django's password validators (length, not common, not numeric, not like the name).
PASSWORD = "correct-horse-battery-staple-42"


class ChatAccount:
    """A browser-like session of a signed-up (or logged-in) user."""

    def __init__(self, base_url: str, username: str, *, signup: bool = True) -> None:
        self.base_url = base_url
        self.username = username
        self.client = httpx.Client(base_url=base_url, timeout=30)
        page = "/accounts/signup/" if signup else "/accounts/login/"
        self.client.get(page).raise_for_status()
        if signup:
            form = {"username": username, "password1": PASSWORD, "password2": PASSWORD}
        else:
            form = {"username": username, "password": PASSWORD}
        response = self.client.post(page, data=form, headers={"X-CSRFToken": self.csrf_token})
        assert response.status_code == 302, response.text

    @property
    def csrf_token(self) -> str:
        return self.client.cookies["csrftoken"]

    def post(self, room: str, text: str) -> httpx.Response:
        """The page's form post of a message."""
        return self.client.post(
            f"/rooms/{room}/messages/",
            data={"text": text},
            headers={"X-CSRFToken": self.csrf_token},
        )

    def say(self, room: str, text: str) -> dict[str, Any]:
        response = self.post(room, text)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    def api(self, method: str, path: str, json: Any = None) -> httpx.Response:
        """A JSON API call with the session and its CSRF header."""
        return self.client.request(
            method, path, json=json, headers={"X-CSRFToken": self.csrf_token}
        )

    def form(self, path: str, **fields: str) -> httpx.Response:
        """A page's form post (join, leave, invite, new room)."""
        data = {"csrfmiddlewaretoken": self.csrf_token, **fields}
        return self.client.post(path, data=data)

    def create_room(self, name: str, *, private: bool = False) -> str:
        response = self.api("POST", "/api/rooms/", {"name": name, "private": private})
        assert response.status_code == 201, response.text
        slug: str = response.json()["slug"]
        return slug

    def stream_client(self) -> httpx.AsyncClient:
        """An async client for streams, logged in as this user."""
        client = stream_client(self.base_url)
        client.cookies.update(self.client.cookies)
        return client

    def close(self) -> None:
        self.client.close()


def logged_in_stream_clients(
    base_url: str, count: int, prefix: str = "reader"
) -> list[httpx.AsyncClient]:
    """``count`` stream clients, each logged in as its own new user.

    Users and sessions are made directly in the database (signing up 200 users over HTTP
    would only slow the test down); the server sees ordinary session cookies.
    """
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    users = User.objects.bulk_create(
        [User(username=f"{prefix}{n}", password="!") for n in range(count)]
    )
    clients = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        client = stream_client(base_url)
        client.cookies.set(settings.SESSION_COOKIE_NAME, session.session_key or "")
        clients.append(client)
    return clients
