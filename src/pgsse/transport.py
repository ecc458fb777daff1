"""What a stream needs from the server's connection beyond ASGI: dropping it, and waiting
while daphne's buffer is full.

ASGI has no message that drops a connection. An application that returns without
completing its response leaves the server to close the connection gracefully, and uvicorn,
granian and daphne then all wait for a client that may never read again: measured, such a
connection stays ESTABLISHED with its buffers for as long as the client keeps it. A stream
stuck writing therefore drops its connection itself (:func:`drop_connection`):

- uvicorn (and gunicorn's uvicorn worker): ``send`` is a method of the request cycle, whose
  asyncio transport has ``abort()``;
- daphne: ``send`` is ``partial(server.handle_reply, request)``, whose Twisted transport has
  ``abortConnection()``;
- any other server (granian), or a ``send`` wrapped by an outer middleware, on Linux: the
  process's own socket for the connection's two addresses (the scope's ``server`` and
  ``client``), found through ``/proc``, is shut down with ``SO_LINGER`` 0. The server's
  next read or write on it fails, it closes its descriptor, and the kernel resets the
  connection at once instead of waiting for the client.

Daphne has a second gap: its ``send`` never waits (Twisted buffers whatever is written), so
a client that stops reading makes the process buffer without limit, and no write ever takes
long enough to time out. :func:`flow_controlled` gives a stream served by daphne a ``send``
that waits while Twisted has paused the request (its buffer is full), as uvicorn's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["drop_connection", "flow_controlled"]

logger = logging.getLogger("pgsse.transport")

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

_LINGER_NONE = struct.pack("ii", 1, 0)


def drop_connection(scope: MutableMapping[str, Any], send: Send | None) -> bool:
    """Drop the client connection of ``scope`` at once (a reset, not a graceful close).

    ``send`` is the server's own callable, if the caller has it. Returns False if no way to
    drop it was found (the server then closes it gracefully, in its own time).
    """
    transport = _server_transport(send)
    if transport is not None:
        transport()
        return True
    return _shut_socket(scope)


def flow_controlled(send: Send) -> tuple[Send, Callable[[], None]]:
    """``send``, waiting while the server's buffer for the client is full, and a function
    to call once the response is over. Only daphne needs it; others get ``send`` back."""
    request = _daphne_request(send)
    if request is None:
        return send, _nothing
    flow = _TwistedFlow(request)

    async def send_when_drained(message: Message) -> None:
        if not flow.resumed.is_set():
            await flow.resumed.wait()
        await send(message)

    return send_when_drained, flow.unregister


def _nothing() -> None:
    pass


def _server_transport(send: Send | None) -> Callable[[], None] | None:
    """The abort of the server's transport behind ``send``, if the server is known."""
    if send is None:
        return None
    cycle = getattr(send, "__self__", None)  # uvicorn: RequestResponseCycle.send
    transport = getattr(cycle, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort) and hasattr(transport, "is_closing"):
        return abort  # type: ignore[no-any-return]
    request = _daphne_request(send)
    if request is not None:
        abort_connection = getattr(getattr(request, "transport", None), "abortConnection", None)
        if callable(abort_connection):
            return abort_connection  # type: ignore[no-any-return]
    return None


def _daphne_request(send: Send) -> Any:
    """The Twisted request behind daphne's ``send``, or None."""
    if isinstance(send, functools.partial) and getattr(send.func, "__name__", "") == (
        "handle_reply"
    ):
        request = send.args[0] if send.args else None
        if hasattr(request, "registerProducer") and hasattr(request, "channel"):
            return request
    return None


class _TwistedFlow:
    """A push producer registered on daphne's request: Twisted pauses it while the
    connection's buffer is full, and resumes it once the buffer has drained."""

    def __init__(self, request: Any) -> None:
        self.resumed = asyncio.Event()
        self._request: Any = request
        if not getattr(request.channel, "_waitingForTransport", False):
            self.resumed.set()
        request.registerProducer(self, True)

    def pauseProducing(self) -> None:
        self.resumed.clear()

    def resumeProducing(self) -> None:
        self.resumed.set()

    def stopProducing(self) -> None:
        self.resumed.set()

    def unregister(self) -> None:
        request, self._request = self._request, None
        if request is not None and request.channel is not None:
            with contextlib.suppress(Exception):  # the connection is gone already
                request.unregisterProducer()


def _shut_socket(scope: MutableMapping[str, Any]) -> bool:
    local, peer = scope.get("server"), scope.get("client")
    if not local or not peer:
        return False
    try:
        fd = _socket_descriptor((str(local[0]), int(local[1])), (str(peer[0]), int(peer[1])))
    except (OSError, ValueError):
        return False
    if fd is None:
        return False
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        # The server holds the other descriptor: when it closes it, no linger means a reset.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_NONE)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        return False
    finally:
        sock.close()
    return True


def _socket_descriptor(local: tuple[str, int], peer: tuple[str, int]) -> int | None:
    """This process's descriptor of the TCP socket from ``local`` to ``peer`` (Linux)."""
    inode = _socket_inode(local, peer)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}") == target:
                return int(name)
    return None


def _socket_inode(local: tuple[str, int], peer: tuple[str, int]) -> str | None:
    address = ipaddress.ip_address(local[0])
    table = "/proc/self/net/tcp6" if address.version == 6 else "/proc/self/net/tcp"
    wanted = (_proc_address(*local), _proc_address(*peer))
    with open(table) as rows:
        next(rows)
        for row in rows:
            fields = row.split()
            if (fields[1], fields[2]) == wanted:
                return fields[9]
    return None


def _proc_address(host: str, port: int) -> str:
    """An address as /proc/net/tcp writes it: each 32-bit word of the address as the
    machine reads it (in its own byte order), in hex, then the port."""
    packed = ipaddress.ip_address(host).packed
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"
