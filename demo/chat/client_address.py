"""Requests whose client address is not an IP address are refused (400), before any view.

The server sets ``REMOTE_ADDR`` from the connection, or, for a trusted proxy (uvicorn's
``--forwarded-allow-ips``), from the ``X-Forwarded-For`` header the proxy sent, whatever it
holds. Log-in throttling (django-axes, which stores an address column) and the chat's rate
limits key on it: a value that is no address would fail them with a database error, and
accepting any string would let whoever can reach the proxy's header mint new allowances.
A proxy that sets the header from the connection (``proxy_set_header X-Forwarded-For
$remote_addr``, docs/deployment.md) never sends such a value.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from chat.errors import json_error

logger = logging.getLogger("django.security.DisallowedClientAddress")

#: The longest textual IP address (an IPv4-mapped IPv6 address), with room for a zone.
MAX_ADDRESS_LENGTH = 64
#: How much of a refused value the answer and the log repeat.
SHOWN = 40


def is_address(value: str) -> bool:
    if len(value) > MAX_ADDRESS_LENGTH:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def refusal(request: HttpRequest, address: str) -> HttpResponse:
    shown = address[:SHOWN] + ("…" if len(address) > SHOWN else "")
    logger.warning("Refused a request whose client address is %r", shown)
    message = (
        f"The client address {shown!r} is not an IP address. A proxy in front of this "
        "server must set X-Forwarded-For to the client's address."
    )
    if request.path_info.startswith("/api/"):
        return json_error(400, message)
    return HttpResponse(message + "\n", status=400, content_type="text/plain; charset=utf-8")


class ClientAddressMiddleware:
    """Refuse (400) a request whose ``REMOTE_ADDR`` is set but is not an IP address."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        address = request.META.get("REMOTE_ADDR") or ""
        if address and not is_address(address):
            return refusal(request, address)
        return self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        address = request.META.get("REMOTE_ADDR") or ""
        if address and not is_address(address):
            return refusal(request, address)
        response: Awaitable[HttpResponse] = self.get_response(request)
        return await response
