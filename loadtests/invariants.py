"""The invariant checker: every stream, channel by channel, against the event log.

For each client and each channel of its stream, the events it received over all its
connections must be exactly the log's events after the position it started from, up to
the log's head at the end: none lost, none twice, none out of order, each with the data
the log holds. Every connection that ended before the end of the run must be explained by
a fault of the schedule (or by the client's own doing), and so must every ``reset`` event.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from loadtests.streams import Connection, StreamClient

#: Seconds after a fault's repair during which what it set off may still end connections.
SLACK = 5.0


@dataclass(frozen=True)
class Fault:
    """A fault of the schedule: what, when (injected, repaired), and where."""

    kind: str
    start: float
    end: float
    port: int | None = None  # the worker it hit, if one
    clients: frozenset[int] = frozenset()  # the stream clients it hit, if some
    detail: str = ""


@dataclass
class Verdict:
    streams: int = 0
    events: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0
    resets: int = 0
    #: Connection ends (and refusals) by explanation: "<fault kind>: <how it ended>".
    explained: Counter[str] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not (
            self.lost or self.duplicated or self.reordered or self.corrupted or self.unexplained
        )


def log_crcs(rows: Iterable[tuple[str, int, str]]) -> dict[str, dict[int, int]]:
    """The log as channel -> seq -> CRC of the data, from (channel, seq, data) rows."""
    log: dict[str, dict[int, int]] = {}
    for channel, seq, data in rows:
        log.setdefault(channel, {})[seq] = zlib.crc32(data.encode())
    return log


def check(
    clients: list[StreamClient],
    log: dict[str, dict[int, int]],
    heads: dict[str, int],
    faults: list[Fault],
    slack: float = SLACK,
) -> Verdict:
    verdict = Verdict(streams=len(clients))
    for client in clients:
        if client.first_position is None:
            verdict.unexplained.append(f"client {client.index} never went live")
            continue
        for index, channel in enumerate(client.channels):
            _check_channel(verdict, client, channel, client.first_position[index], log, heads)
        for when, data in client.resets:
            verdict.resets += 1
            verdict.unexplained.append(f"client {client.index}: reset at {when:.1f}: {data}")
        for connection in client.connections:
            if connection.ended in ("stopped", ""):
                continue
            fault = explain(client, connection, faults, slack)
            if fault is None:
                verdict.unexplained.append(
                    f"client {client.index}: connection to {connection.port} ended "
                    f"{connection.ended!r} (status {connection.status}) at {connection.closed:.1f}"
                )
            else:
                verdict.explained[f"{fault.kind}: {connection.ended}"] += 1
    return verdict


def _check_channel(
    verdict: Verdict,
    client: StreamClient,
    channel: str,
    start: int,
    log: dict[str, dict[int, int]],
    heads: dict[str, int],
) -> None:
    received = client.logs[channel]
    truth = log.get(channel, {})
    seen: set[int] = set()
    last = start
    for seq, crc in zip(received.seqs, received.crcs, strict=True):
        verdict.events += 1
        if seq in seen:
            verdict.duplicated += 1
            continue
        seen.add(seq)
        if seq < last:
            verdict.reordered += 1
            continue
        if seq > last + 1:
            verdict.lost += seq - last - 1
        if truth.get(seq) != crc:
            verdict.corrupted += 1
        last = seq
    verdict.lost += max(0, heads.get(channel, 0) - last)


def explain(
    client: StreamClient, connection: Connection, faults: list[Fault], slack: float
) -> Fault | None:
    """The fault that ended (or refused) ``connection``, or None.

    A client's own doing (frozen, dropped) is explained by the fault that made it do so;
    otherwise by a fault under way when the connection ended, the one that hit this
    connection's worker first, else the latest to start.
    """
    own = {"frozen": "freeze clients", "dropped": "drop mid-event"}.get(connection.ended)
    if own is not None:
        return next((f for f in faults if f.kind == own and client.index in f.clients), None)
    when = connection.closed or connection.opened
    candidates = [
        fault
        for fault in faults
        if fault.start - 1 <= when <= fault.end + slack
        and not fault.clients
        and (fault.port is None or fault.port == connection.port)
        # A listener outage must not end any stream: at most it delays a new one.
        and (fault.kind != "kill listener" or connection.ended == "refused")
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda f: (f.port is not None, f.start))
