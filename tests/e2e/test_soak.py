"""`make soak`'s short mode: a minute of steady load and churn on two workers.

It runs the same harness as `make soak` (loadtests/), on its own embedded PostgreSQL, and
passes only on the soak's own criteria: memory flat within 10% after warm-up, threads and
connections not growing, no worker restart, every churn client live, and the steady
streams identical to the log.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.servers import REPOSITORY


def test_a_short_soak_passes() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests",
            "soak",
            "--duration",
            "60",
            "--streams",
            "200",
            "--cycles",
            "600",
            "--rooms",
            "5",
            "--rate",
            "5",
        ],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.stdout, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    failed = [criterion for criterion in summary["criteria"] if not criterion[1]]
    assert failed == [], failed
    assert summary["cycles"] == 600
    assert done.returncode == 0, done.stderr[-3000:]
    names = {criterion[0] for criterion in summary["criteria"]}
    assert {"churn", "no restart", "invariants"} <= names
    assert sum("memory" in name for name in names) == 2  # one per worker
