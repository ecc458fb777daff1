"""``make chaos`` and ``make soak``: the chat under load and faults, on loopback, bounded in time.

- :mod:`loadtests.cluster`: an embedded PostgreSQL of its own and worker processes under
  a supervisor that restarts them;
- :mod:`loadtests.streams`: thousands of stream clients that resume like browsers;
- :mod:`loadtests.publishing`: many users posting through the chat's HTTP API;
- :mod:`loadtests.sampling`: each worker's /metrics, memory, threads and connections;
- :mod:`loadtests.invariants`: every stream against the log (nothing lost, duplicated or
  reordered; every reset explained);
- :mod:`loadtests.chaos` and :mod:`loadtests.soak`: the two runs, and
  :mod:`loadtests.report` their Markdown reports and plots.
"""
