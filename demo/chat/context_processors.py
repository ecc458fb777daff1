"""What every page's top bar needs."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from chat.profiles import display_name

#: Pages that must never be where logging in or signing up leads.
ACCOUNT_PAGES = ("/accounts/",)


def account_links(request: HttpRequest) -> dict[str, str]:
    """``after_account``: where *Log in* and *Sign up* lead back to; ``me_name``: the
    display name of the user logged in.

    On the log-in and sign-up pages, that is where those pages would go (their ``next``),
    never the account pages themselves: signing up from the log-in page lands on the room
    list, not on the log-in form again.
    """
    if request.path.startswith(ACCOUNT_PAGES):
        target = request.POST.get("next") or request.GET.get("next") or "/"
    else:
        target = request.get_full_path()
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    if not safe or target.startswith(ACCOUNT_PAGES):
        target = "/"
    user = getattr(request, "user", None)
    me_name = display_name(user) if user is not None and user.is_authenticated else ""
    return {"after_account": target, "me_name": me_name}
