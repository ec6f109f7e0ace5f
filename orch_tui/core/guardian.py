"""Nothing outlives the orchestrator: a tiny guardian process that kills every job's process
group when the orchestrator dies, even by `kill -9`.

PR_SET_PDEATHSIG would need a Python-level fork per job (preexec_fn) and only reaches the direct
child; the guardian costs one process per run and one short pipe write per job start and end.
It holds the read end of a pipe whose only writer is the orchestrator: end of file means the
orchestrator is gone, and every process group still registered gets SIGCONT and SIGKILL.
"""

from __future__ import annotations

import os
import sys

# Run with `python -c`: standard library only, signals that would reach the orchestrator's
# terminal ignored (it runs in a session of its own anyway).
GUARDIAN_SOURCE = r"""
import os, signal, sys
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
    signal.signal(sig, signal.SIG_IGN)
groups = set()
buffer = b""
while True:
    try:
        data = os.read(0, 65536)
    except InterruptedError:
        continue
    if not data:
        break
    buffer += data
    *lines, buffer = buffer.split(b"\n")
    for line in lines:
        if line.startswith(b"+"):
            groups.add(int(line[1:]))
        elif line.startswith(b"-"):
            groups.discard(int(line[1:]))
        elif line == b"exit":
            groups.clear()
for pgid in groups:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
"""


class Guardian:
    """The orchestrator's side: register job process groups as they start and end."""

    def __init__(self) -> None:
        read_end, self._write_end = os.pipe()  # both close-on-exec: no job inherits them
        try:
            self.pid = os.posix_spawn(sys.executable, [sys.executable, "-c", GUARDIAN_SOURCE],
                                      os.environ,
                                      file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)],
                                      setsid=True)
        finally:
            os.close(read_end)
        self._closed = False

    def _send(self, line: str) -> None:
        if self._closed:
            return
        try:
            os.write(self._write_end, line.encode() + b"\n")
        except OSError:
            self._closed = True  # the guardian died: jobs are still killed on a clean exit

    def watch(self, pgid: int) -> None:
        """A job's process group started: kill it if the orchestrator dies."""
        self._send(f"+{pgid}")

    def release(self, pgid: int) -> None:
        """A job ended: its group id may be reused, never kill it any more."""
        self._send(f"-{pgid}")

    def close(self) -> None:
        """A clean exit: tell the guardian nothing is left, let it end, reap it."""
        if self._closed:
            return
        self._send("exit")
        self._closed = True
        os.close(self._write_end)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
