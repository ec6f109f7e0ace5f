"""Nothing outlives the orchestrator: a tiny guardian process that kills every job's process
group when the orchestrator dies, even by `kill -9`.

PR_SET_PDEATHSIG would need a Python-level fork per job (preexec_fn) and only reaches the direct
child; the guardian costs one process per run and one short pipe write per job start and end.
It holds the read end of a pipe whose only writer is the orchestrator: end of file means the
orchestrator is gone, and every process group still registered gets SIGCONT and SIGKILL. It also
knows the run's containment (core/containment/), so what left the groups dies too: in cgroup
mode one write to the run group's cgroup.kill, then the groups are removed; in the subreaper
mode every process whose environment carries the run's ORCH_TUI_JOB marker, scanned for again
until none is left (bounded). Each job's log then says what was killed besides the job.
"""

from __future__ import annotations

import os
import sys

# Run with `python -c`: standard library only, signals that would reach the orchestrator's
# terminal ignored (it runs in a session of its own anyway).
GUARDIAN_SOURCE = r"""
import os, signal, time
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
    signal.signal(sig, signal.SIG_IGN)
jobs, run_group, marker, buffer = {}, None, None, b""
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
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            pgid, _, rest = rest.partition(b" ")
            key, _, log = rest.partition(b" ")
            jobs[int(pgid)] = (key, bytes.fromhex(log.decode()))
        elif kind == b"-":
            jobs.pop(int(rest), None)
        elif kind == b"c":
            run_group = bytes.fromhex(rest.decode())
        elif kind == b"m":
            marker = b"ORCH_TUI_JOB=" + rest
        elif line == b"exit":
            jobs, run_group, marker = {}, None, None
def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""
others = {pgid: set() for pgid in jobs}
if run_group:
    for pgid, (key, _) in jobs.items():
        others[pgid] = {int(p) for p in read(run_group + b"/" + key + b"/cgroup.procs").split()}
for pgid in jobs:
    for sig in (signal.SIGCONT, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except OSError:
            pass
if run_group:
    try:
        with open(run_group + b"/cgroup.kill", "wb") as handle:
            handle.write(b"1")
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while b"populated 1" in read(run_group + b"/cgroup.events") and time.monotonic() < deadline:
        time.sleep(0.01)
    for top, dirs, _ in os.walk(run_group, topdown=False):
        for name in dirs + [b""]:
            try:
                os.rmdir(os.path.join(top, name) if name else top)
            except OSError:
                pass
elif marker:
    by_key = {key: pgid for pgid, (key, _) in jobs.items()}
    for _ in range(200):
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            for entry in read("/proc/" + name + "/environ").split(b"\0"):
                if entry.startswith(marker):
                    found = True
                    try:
                        os.kill(int(name), signal.SIGKILL)
                    except OSError:
                        pass
                    if entry[len(marker):] in by_key:
                        others[by_key[entry[len(marker):]]].add(int(name))
        if not found:
            break
        time.sleep(0.01)
for pgid, pids in others.items():
    count = len(pids - {pgid})
    if count:
        noun = "process" if count == 1 else "processes"
        try:
            fd = os.open(jobs[pgid][1], os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
            os.write(fd, b"orch-tui: orchestrator gone; killed the job and %d other %s\n"
                     % (count, noun.encode()))
            os.close(fd)
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

    def watch(self, pgid: int, key: str = "-", log: str | os.PathLike[str] = "") -> None:
        """A job's process group started: kill it if the orchestrator dies. `key` names its
        containment (cgroup or marker), `log` the file that says what else was killed."""
        self._send(f"+{pgid} {key} {os.fsencode(log).hex()}")

    def contain(self, line: str) -> None:
        """The run's containment, as `Containment.guardian_lines` gives it."""
        self._send(line)

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
