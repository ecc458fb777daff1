"""Search, for people (``/search/?q=``) and for bots (``GET /api/search/?q=``).

Both answer the same page (:mod:`chat.search`): newest first, ``before=<id>`` for the next.
Each search is rate limited (``search``), per user and per address: it reads every room
the user may read.
"""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from chat import conf, inputs, ratelimit, search
from chat.auth import reader
from chat.errors import ApiError, api_view, not_authenticated


def _run(request: HttpRequest, user: object) -> search.Page:
    before = inputs.query_integer(request, "before", None)
    with transaction.atomic():
        ratelimit.check("search", request, user)
    return search.search(user, request.GET.get("q", ""), before)


@api_view(["GET"])
def api_search(request: HttpRequest) -> HttpResponse:
    """``{"query", "results": [...], "has_more", "next_before", "notice"}``."""
    user = reader(request)
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        raise not_authenticated()
    try:
        page = _run(request, user)
    except search.SearchError as exc:
        raise ApiError(400, str(exc)) from exc
    return JsonResponse(page.as_data())


@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated and not conf.get("CHAT_ANONYMOUS_READ"):
        return redirect_to_login(request.get_full_path())
    context: dict[str, object] = {"q": request.GET.get("q", "")}
    status = 200
    if context["q"]:
        try:
            context["page"] = _run(request, user)
        except ApiError as exc:
            context["error"], status = str(exc), exc.status
        except search.SearchError as exc:
            context["error"], status = str(exc), 400
        except ratelimit.RateLimited as exc:
            response = render(
                request, "chat/search.html", {**context, "error": str(exc)}, status=429
            )
            response["Retry-After"] = str(exc.retry_after)
            return response
    return render(request, "chat/search.html", context, status=status)
