"""``python manage.py chat_token <username>``: print an API token for the user.

Creates the user (with no usable password: it can only use the API) if needed. Each run
issues a new token and invalidates the previous one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for USERNAME (created if needed); the old token stops working."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"].strip()
        if not username:
            raise CommandError("Give a username.")
        User = get_user_model()
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username)
            user.set_unusable_password()
            try:
                user.full_clean()
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            user.save()
            self.stderr.write(f"Created user {username!r}.")
        self.stdout.write(ApiToken.issue(user))
