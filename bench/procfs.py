"""What a process has used, read from /proc: CPU seconds, resident memory, threads."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int
    threads: int


def usage(pid: int) -> Usage:
    """CPU (user + system) so far, resident set size and thread count of ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces: fields are counted after its closing paren.
        fields = stat.read().rsplit(")", 1)[1].split()
    utime, stime, threads = int(fields[11]), int(fields[12]), int(fields[17])
    with open(f"/proc/{pid}/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    cpu = _scheduler_cpu_seconds(pid)
    if cpu is None:
        cpu = (utime + stime) / _TICKS
    return Usage(cpu, resident_pages * _PAGE, threads)


def _scheduler_cpu_seconds(pid: int) -> float | None:
    """CPU time of every live thread of ``pid`` to the microsecond, if the kernel says.

    ``/proc/<pid>/stat`` counts in clock ticks (10 ms here): too coarse for the few
    hundred milliseconds a small run spends. The scheduler's own tally is exact, but
    only for threads alive now (none of the servers ends a thread while measured).
    """
    if not os.path.exists(f"/proc/{pid}/sched"):
        return None  # a kernel built without scheduler debugging
    total = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/sched") as sched:
                for line in sched:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":", 1)[1])  # milliseconds
                        break
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return total / 1000
