"""What a process has used, read from /proc (CPU, memory, threads), and its file limit."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
#: Descriptors the client and the servers may open: 20,000 streams and some to spare.
OPEN_FILES = 65536


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


def raise_open_files_limit() -> None:
    """Raise this process's (and its children's) RLIMIT_NOFILE: a stream is a descriptor.

    Root may raise the hard limit (20,000 by default here) too; others get their hard limit.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(hard, OPEN_FILES)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
