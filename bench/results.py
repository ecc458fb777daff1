"""Everything one run measured, as the driver collects it and the report reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.chat_posting import ChatPostingResult
from bench.fanout import FanoutResult
from bench.listeners import ListenersResult
from bench.opening import OpeningResult
from bench.storm import StormResult
from bench.throughput import ThroughputResult


@dataclass
class Results:
    machine: dict[str, str]
    scale: dict[str, Any]
    #: Every fan-out run: each server at each stream count, round and mode.
    fanout: list[FanoutResult] = field(default_factory=list)
    storms: list[StormResult] = field(default_factory=list)
    naive: FanoutResult | None = None
    naive_cap: int = 0
    max_connections: int = 0
    throughput: list[ThroughputResult] = field(default_factory=list)
    #: The chat's POST latency and log events per message, by room size.
    chat_posting: list[ChatPostingResult] = field(default_factory=list)
    #: Publish rate and delivery latency by the number of listening workers.
    listeners: list[ListenersResult] = field(default_factory=list)
    #: Streams opened as fast as a worker takes them, and reconnect waves (pgsse, chat).
    opening: list[OpeningResult] = field(default_factory=list)
    #: How the servers were set up for this run (raised caps and the like).
    notes: list[str] = field(default_factory=list)
    load_before: str = ""
    load_after: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "scale": self.scale,
            "notes": self.notes,
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "seconds": self.seconds,
            "fanout": [result.as_dict() for result in self.fanout],
            "storms": [result.as_dict() for result in self.storms],
            "naive": self.naive.as_dict() if self.naive else None,
            "naive_cap": self.naive_cap,
            "max_connections": self.max_connections,
            "throughput": [result.as_dict() for result in self.throughput],
            "chat_posting": [result.as_dict() for result in self.chat_posting],
            "listeners": [result.as_dict() for result in self.listeners],
            "opening": [result.as_dict() for result in self.opening],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        """A run read back from its JSON (to write its report again)."""
        return cls(
            machine=data["machine"],
            scale=data["scale"],
            fanout=[FanoutResult(**result) for result in data["fanout"]],
            storms=[StormResult(**storm) for storm in data["storms"]],
            naive=FanoutResult(**data["naive"]) if data["naive"] else None,
            naive_cap=data["naive_cap"],
            max_connections=data["max_connections"],
            throughput=[ThroughputResult(**result) for result in data["throughput"]],
            chat_posting=[ChatPostingResult(**r) for r in data.get("chat_posting", [])],
            listeners=[ListenersResult(**result) for result in data.get("listeners", [])],
            opening=[OpeningResult(**result) for result in data.get("opening", [])],
            notes=data["notes"],
            load_before=data["load_average_before"],
            load_after=data["load_average_after"],
            seconds=data["seconds"],
        )

    def runs(self, mode: str = "paced") -> list[FanoutResult]:
        return [result for result in self.fanout if result.mode == mode]

    def baseline(self, result: FanoutResult, mode: str | None = None) -> FanoutResult | None:
        """The bare loop's run beside ``result``: same count, workers and round (and mode)."""
        for other in self.fanout:
            if (
                other.server == "bare"
                and other.ok
                and other.mode == (mode or result.mode)
                and (other.streams_requested, other.workers, other.round)
                == (result.streams_requested, result.workers, result.round)
            ):
                return other
        return None
