"""The account forms: signing up (with an optional e-mail address) and one's profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField
from django.contrib.auth.models import User

from chat import profiles

if TYPE_CHECKING:
    UserCreationFormBase = UserCreationForm[User]
else:
    UserCreationFormBase = UserCreationForm


class SignupForm(UserCreationFormBase):
    """Django's sign-up form, with an optional e-mail address (for password resets)."""

    email = forms.EmailField(
        required=False,
        help_text="Optional: where a password reset is sent. Nobody else sees it.",
    )

    class Meta:  # UserCreationForm's, with the e-mail address
        model = User
        fields = ("username", "email")
        field_classes = {"username": UsernameField}


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        required=False,
        max_length=profiles.MAX_DISPLAY_NAME_LENGTH,
        label="Display name",
        help_text="The name people see beside your messages; blank: your username.",
    )
    email = forms.EmailField(
        required=False,
        label="E-mail address",
        help_text="Where a password reset is sent. Nobody else sees it.",
    )
