"""``python -m loadtests chaos|soak [options]``: see ``--help``; ``make chaos``, ``make soak``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests")
    runs = parser.add_subparsers(dest="run", required=True)
    chaos = runs.add_parser("chaos", help="faults on a schedule, then the invariant checker")
    chaos.add_argument("--duration", type=float, default=300.0, help="seconds (default 300)")
    chaos.add_argument("--streams", type=int, default=2000)
    chaos.add_argument("--rooms", type=int, default=20)
    chaos.add_argument("--rate", type=float, default=20.0, help="posts per second")
    soak = runs.add_parser("soak", help="steady load and churn; nothing may grow")
    soak.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800)")
    soak.add_argument("--streams", type=int, default=500)
    soak.add_argument("--cycles", type=int, default=10_000, help="connect/disconnect cycles")
    soak.add_argument("--rooms", type=int, default=10)
    soak.add_argument("--rate", type=float, default=10.0, help="posts per second")
    for sub in (chaos, soak):
        sub.add_argument("--report", type=Path, help="write the Markdown report and plots here")
    args = parser.parse_args(argv)

    from loadtests import report

    if args.run == "chaos":
        from loadtests.chaos import ChaosConfig, run

        result = run(
            ChaosConfig(
                duration=args.duration, streams=args.streams, rooms=args.rooms, rate=args.rate
            )
        )
        summary = {
            "passed": result.passed,
            "events": result.verdict.events,
            "lost": result.verdict.lost,
            "duplicated": result.verdict.duplicated,
            "reordered": result.verdict.reordered,
            "corrupted": result.verdict.corrupted,
            "resets": result.verdict.resets,
            "unexplained": result.verdict.unexplained[:20],
            "explained": dict(result.verdict.explained),
            "faults": [
                {
                    "kind": c.fault.kind,
                    "reconnect": c.reconnect,
                    "catch_up": c.catch_up,
                    "max_lag": c.max_lag,
                    "closed": dict(c.closed),
                    "server_closed": c.server_closed,
                    "posts_failed": c.posts_failed,
                }
                for c in result.costs
            ],
            "converged_in": result.converged_in,
        }
        if args.report:
            summary["report"] = str(report.write_chaos(result, args.report))
    else:
        from loadtests.soak import SoakConfig
        from loadtests.soak import run as run_soak

        soaked = run_soak(
            SoakConfig(
                duration=args.duration,
                streams=args.streams,
                cycles=args.cycles,
                rooms=args.rooms,
                rate=args.rate,
            )
        )
        summary = {
            "passed": soaked.passed,
            "cycles": soaked.cycles,
            "criteria": [(c.name, c.passed, c.detail) for c in soaked.criteria],
        }
        if args.report:
            summary["report"] = str(report.write_soak(soaked, args.report))
        result = soaked  # type: ignore[assignment]
    print(json.dumps(summary, indent=1))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
