"""The cluster backend: every job of a run on a Dask distributed cluster (`--cluster ADDRESS`).

`runner.DaskRunner` is the second implementation of the runner interface (core/runner.py); on
each node `worker.OrchPlugin` runs the jobs through a `LocalRunner`, so the local rules (own
session, stdin /dev/null, containment, guardian) hold there unchanged; `node` is `orch-tui node`.
Nothing outside this package imports `distributed`, and the core never imports this package: a
local run never loads it.
"""
