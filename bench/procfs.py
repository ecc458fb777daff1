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
    return Usage((utime + stime) / _TICKS, resident_pages * _PAGE, threads)
