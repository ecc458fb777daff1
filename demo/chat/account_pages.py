"""Account pages beyond logging in: one's profile (the display name others see, the e-mail
address a password reset is sent to) and the password reset itself.

The reset is Django's own (its token generator, its views, one-time links that expire
after ``PASSWORD_RESET_TIMEOUT``), with the chat's templates, and limited per client
address: each request sends an e-mail. Whether an address has an account is never told.
Under ``make run`` the e-mail is printed in the server's terminal (Django's console
e-mail backend); in production the SMTP settings come from the environment (the
settings module's docstring, docs/chat.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from chat import profiles, ratelimit
from chat.account_forms import ProfileForm
from chat.errors import ApiError
from chat.views import retrying_page, too_many


@require_http_methods(["GET", "POST"])
@retrying_page
def profile(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    shown = profiles.person(user)
    form = ProfileForm(
        request.POST or None,
        initial={
            "display_name": shown.name if shown.name != shown.username else "",
            "email": user.email,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                ratelimit.check("profile", request, user)
                profiles.set_display_name(user, form.cleaned_data["display_name"])
                user.email = form.cleaned_data["email"]
                user.save(update_fields=["email"])
        except ratelimit.RateLimited as exc:
            return too_many(request, exc)
        except ApiError as exc:
            form.add_error("display_name", str(exc))
        else:
            messages.success(request, "Your profile is saved.")
            return redirect("chat:profile")
    return render(request, "chat/account/profile.html", {"form": form, "person": shown})


# The admin's templates of the same names come first in the template search (the admin
# is installed before the chat): the chat's are under chat/account/.


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, limited per client address (each request sends an e-mail)."""

    template_name = "chat/account/password_reset_form.html"
    email_template_name = "chat/account/password_reset_email.txt"
    subject_template_name = "chat/account/password_reset_subject.txt"
    success_url = reverse_lazy("chat:password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            with transaction.atomic():
                ratelimit.check("password_reset", request)
        except ratelimit.RateLimited as exc:
            form = self.get_form()
            context = self.get_context_data(form=form, refused=str(exc))
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(exc.retry_after)
            return response
        return super().post(request, *args, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting the new password ends the user's open streams (chat.revocation: a password
    saved anew, whoever saves it)."""

    template_name = "chat/account/password_reset_confirm.html"
    success_url = reverse_lazy("chat:password_reset_complete")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "chat/account/password_change_form.html"
    success_url = reverse_lazy("chat:password_change_done")


password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="chat/account/password_reset_done.html"
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="chat/account/password_reset_complete.html"
)
password_change_done = auth_views.PasswordChangeDoneView.as_view(
    template_name="chat/account/password_change_done.html"
)
