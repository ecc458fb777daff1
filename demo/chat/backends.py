"""The chat's authentication backend: Django's ``ModelBackend``, reading the user of a
request with one plain statement.

Every request of a logged-in user reads its user's row (Django's ``get_user``, through
the backend its session names): every page, API call and stream open. Built by the ORM,
that read cost about three times the statement itself on the benchmark's machine, a
third of what opening the chat's stream cost once its connection came from the pool. The
checks are Django's: the row by primary key, ``is_active`` (``user_can_authenticate``),
then the session's hash against the password's (``django.contrib.auth.get_user``), so
a deactivated account or a changed password is refused on the next request, on every
process. Logging in, passwords and permissions are ``ModelBackend``'s own.

A bearer token's user is read the same way (:func:`user_for_token_digest`).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.db import connections, router

#: This backend, as ``AUTHENTICATION_BACKENDS`` and sessions name it.
ACCOUNT_BACKEND = "chat.backends.AccountBackend"
#: What sessions made before named instead (see chat.sessions).
DJANGO_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

#: ``auth_user``'s columns, in the order of ``User._meta.concrete_fields``.
_FIELDS = (
    "id",
    "password",
    "last_login",
    "is_superuser",
    "username",
    "first_name",
    "last_name",
    "email",
    "is_staff",
    "is_active",
    "date_joined",
)
_BY_PK = (
    "SELECT id, password, last_login, is_superuser, username, first_name, last_name,"
    " email, is_staff, is_active, date_joined FROM auth_user WHERE id = %s"
)
_BY_TOKEN_DIGEST = (
    "SELECT u.id, u.password, u.last_login, u.is_superuser, u.username, u.first_name,"
    " u.last_name, u.email, u.is_staff, u.is_active, u.date_joined"
    " FROM auth_user u JOIN chat_apitoken t ON t.user_id = u.id WHERE t.digest = %s"
)


def _one_user(statement: str, parameter: int | str) -> User | None:
    alias = router.db_for_read(User)
    with connections[alias].cursor() as cursor:
        cursor.execute(statement, [parameter])
        row = cursor.fetchone()
    return User.from_db(alias, _FIELDS, row) if row is not None else None


def user_for_token_digest(digest: str) -> User | None:
    """The user whose API token has this digest, active or not."""
    return _one_user(_BY_TOKEN_DIGEST, digest)


class AccountBackend(ModelBackend):
    def get_user(self, user_id: Any) -> User | None:
        try:
            user = _one_user(_BY_PK, int(user_id))
        except (TypeError, ValueError):
            return None  # a session naming no user id: nobody (ModelBackend: no row)
        return user if user is not None and self.user_can_authenticate(user) else None
