"""The floor under any Python dispatcher of orch-tui's kind (a benchmark helper, not a tool).

    python tests/bench/floor_dispatch.py BINARY ITEMS PROCS LOGS

Runs `BINARY ITEM` (the benches give it their `true`) for each line of ITEMS, PROCS at a time,
doing only what orch-tui's process rules ask of every job and nothing else: `os.posix_spawn`
into a session of its own with stdin from /dev/null and stdout and stderr to a log file of its
own (created O_EXCL|O_NOFOLLOW, 0600, in LOGS), a pidfd watched by an asyncio loop, `wait4` for
its exit. No journal, no events, no containment, no guardian, no checks. Started as a process of
its own, as orch-tui is, so its interpreter start is in its wall time too: what it takes above
xargs is what CPython itself costs, which no change inside orch-tui can win back.
"""

from __future__ import annotations

import asyncio
import os
import sys

LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


async def dispatch(binary: str, items: list[str], procs: int, logs: str) -> int:
    """Run `binary` over every item, `procs` at a time; the number of non-zero exits."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    environ = dict(os.environb)
    state = {"next": 0, "running": 0, "failed": 0}

    def launch() -> None:
        index = state["next"]
        state["next"] += 1
        log = os.open(f"{logs}/{index}.log", LOG_FLAGS, 0o600)
        try:
            pid = os.posix_spawn(binary, [binary, items[index]],
                                 environ,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                               (os.POSIX_SPAWN_DUP2, log, 1),
                                               (os.POSIX_SPAWN_DUP2, log, 2)],
                                 setsid=True)
        finally:
            os.close(log)
        pidfd = os.pidfd_open(pid)
        loop.add_reader(pidfd, reap, pid, pidfd)
        state["running"] += 1

    def reap(pid: int, pidfd: int) -> None:
        loop.remove_reader(pidfd)
        _, status, _ = os.wait4(pid, 0)
        os.close(pidfd)
        state["running"] -= 1
        state["failed"] += status != 0
        if state["next"] < len(items):
            launch()
        elif not state["running"]:
            done.set_result(None)

    for _ in range(min(procs, len(items))):
        launch()
    if items:
        await done
    return state["failed"]


def main() -> int:
    """Exit 0 when every job succeeded."""
    binary, items_file, procs, logs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(items_file, encoding="utf-8") as handle:
        items = handle.read().splitlines()
    os.makedirs(logs, mode=0o700, exist_ok=True)
    return 1 if asyncio.run(dispatch(binary, items, procs, logs)) else 0


if __name__ == "__main__":
    sys.exit(main())
