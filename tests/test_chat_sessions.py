"""How the chat reads who makes a request (chat.sessions, chat.backends): the session's row
and the user's row with one plain statement each, under Django's own checks, so that a
session ended, an account deactivated or a password changed is refused on the next request;
sessions made with Django's ModelBackend still log in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user,
)
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.test import RequestFactory
from django.utils import timezone

from chat import backends
from chat.models import ApiToken
from chat.sessions import SessionStore

pytestmark = pytest.mark.django_db


def logged_in(user: User, backend: str = backends.ACCOUNT_BACKEND) -> SessionStore:
    """A session of ``user`` as ``django.contrib.auth.login`` leaves it, saved."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session


def request_with(session_key: str | None) -> HttpRequest:
    request = RequestFactory().get("/")
    request.session = SessionStore(session_key)
    return request


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada", password="correct-horse-battery-staple-42")


def test_a_saved_session_is_read_back() -> None:
    session = SessionStore()
    session["room"] = "lobby"
    session.create()
    assert SessionStore(session.session_key)["room"] == "lobby"


def test_an_expired_or_deleted_session_is_none(ada: User) -> None:
    expired, deleted = logged_in(ada), logged_in(ada)
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    deleted.delete()  # what logging out does
    for key in (expired.session_key, deleted.session_key):
        session = SessionStore(key)
        assert session.load() == {}
        assert session.session_key is None  # a new session gets a new key
        assert not get_user(request_with(key)).is_authenticated


def test_the_session_and_its_user_take_one_statement_each(
    ada: User, django_assert_num_queries: object
) -> None:
    key = logged_in(ada).session_key
    with django_assert_num_queries(2):  # type: ignore[operator]
        assert get_user(request_with(key)) == ada


def test_a_session_made_with_djangos_model_backend_still_logs_in(ada: User) -> None:
    key = logged_in(ada, backend=backends.DJANGO_MODEL_BACKEND).session_key
    assert get_user(request_with(key)) == ada


@pytest.mark.parametrize("change", ["password", "deactivated", "deleted"])
def test_an_account_change_ends_its_sessions(ada: User, change: str) -> None:
    key = logged_in(ada).session_key
    if change == "password":
        ada.set_password("another-horse-battery-staple-43")
        ada.save()
    elif change == "deactivated":
        ada.is_active = False
        ada.save()
    else:
        ada.delete()
    assert not get_user(request_with(key)).is_authenticated


def test_the_backend_reads_the_whole_user(ada: User) -> None:
    assert tuple(f.attname for f in User._meta.concrete_fields) == backends._FIELDS
    read = backends.AccountBackend().get_user(ada.pk)
    assert read is not None
    stored = User.objects.get(pk=ada.pk)
    assert {f: getattr(read, f) for f in backends._FIELDS} == {
        f: getattr(stored, f) for f in backends._FIELDS
    }
    assert backends.AccountBackend().get_user(ada.pk + 1000) is None


def test_a_token_names_its_active_user_only(ada: User) -> None:
    token = ApiToken.issue(ada)
    assert ApiToken.user_for(token) == ada
    assert ApiToken.user_for(token + "x") is None
    ada.is_active = False
    ada.save()
    assert ApiToken.user_for(token) is None
