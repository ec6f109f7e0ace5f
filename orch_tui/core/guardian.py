"""Nothing outlives the orchestrator: a tiny guardian process that kills every job, and all it
started, when the orchestrator dies, even by `kill -9`.

PR_SET_PDEATHSIG would need a Python-level fork per job (preexec_fn) and only reaches the direct
child; the guardian costs one process per run and a share of a short pipe write per job. It
holds the read end of a pipe whose only writer is the orchestrator: end of file means the
orchestrator is gone, and every job still running is killed as its containment allows (below).

It is cheap because it is lazy. A job's registration waits up to BATCH_SECONDS to share a write
with others. The guardian reads its pipe at most every NAP_SECONDS, so writes do not wake it one
by one. Everything written before the orchestrator died is still read before the guardian acts.
A job not yet registered is still killed, by its cgroup or by its marker, as every job is.

It knows the run's containment (core/containment/), so what left the groups dies too:
- cgroup mode: one write to the run group's cgroup.kill kills every process of every job, then
  the groups are removed. No process group is signalled, so a job's release (its end) waits for
  the next batch too: a stale entry can never make the guardian signal a reused group id.
- subreaper mode: every registered group gets SIGCONT and SIGKILL, so a job's release is written
  at once, before its leader is reaped and its id can be reused; then every process whose
  environment carries the run's ORCH_TUI_JOB marker, scanned for again until none is left
  (bounded).
Each job's log then says what was killed besides the job. In cgroup mode a group is named by the
job it hosts now (groups are reused), and the note needs the job's leader still in its group: a
job whose group holds someone else's processes is never blamed for them.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import sys

#: How long a job's registration may wait for others to share its write (see the docstring).
BATCH_SECONDS = 0.01
#: The guardian's pause between reads of its pipe: a kill comes at most this much later.
NAP_SECONDS = 0.02
#: The pipe's size asked for, so a burst of writes never waits for the napping guardian.
PIPE_BYTES = 1 << 20

# Run with `python -c`: standard library only, signals that would reach the orchestrator's
# terminal ignored (it runs in a session of its own anyway).
GUARDIAN_SOURCE = r"""
import os, signal, sys, time
NAP = float(sys.argv[1])
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
    signal.signal(sig, signal.SIG_IGN)
jobs, by_key, run_group, marker, buffer = {}, {}, None, None, b""
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
            old = by_key.get(key)
            if run_group and old in jobs and jobs[old][0] == key:
                del jobs[old]  # a reused group: the job it hosted before is over
            jobs[int(pgid)] = (key, bytes.fromhex(log.decode()))
            by_key[key] = int(pgid)
        elif kind == b"-":
            jobs.pop(int(rest), None)
        elif kind == b"c":
            run_group = bytes.fromhex(rest.decode())
        elif kind == b"m":
            marker = b"ORCH_TUI_JOB=" + rest
        elif line == b"exit":
            jobs, by_key, run_group, marker = {}, {}, None, None
    time.sleep(NAP)
def read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""
others = {pgid: set() for pgid in jobs}
if run_group:
    for pgid, (key, _) in jobs.items():
        members = {int(p) for p in read(run_group + b"/" + key + b"/cgroup.procs").split()}
        others[pgid] = members if pgid in members else set()
else:
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
    except OSError:  # never seen: then every member the groups list now, one by one
        for top, _, names in os.walk(run_group):
            if b"cgroup.procs" in names:
                for pid in read(os.path.join(top, b"cgroup.procs")).split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
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
    """The orchestrator's side: register job process groups as they start and end.

    With `loop`, registrations are batched (BATCH_SECONDS); without one, each is written at
    once."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        read_end, self._write_end = os.pipe()  # both close-on-exec: no job inherits them
        try:
            fcntl.fcntl(self._write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size: a full pipe only makes a write wait a nap
        try:
            self.pid = os.posix_spawn(sys.executable,
                                      [sys.executable, "-c", GUARDIAN_SOURCE,
                                       str(NAP_SECONDS)],
                                      os.environ,
                                      file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)],
                                      setsid=True)
        except OSError:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        self._closed = False
        self._loop = loop
        self._pending: list[bytes] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    def _send(self, line: str, *, now: bool = True) -> None:
        if self._closed:
            return
        self._pending.append(line.encode())
        if now or self._loop is None:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_later(BATCH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write every line waiting, in one write."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._pending or self._closed:
            return
        data = b"\n".join(self._pending) + b"\n"
        self._pending.clear()
        try:
            while data:
                data = data[os.write(self._write_end, data):]
        except OSError:
            self._closed = True  # the guardian died: jobs are still killed on a clean exit

    def watch(self, pgid: int, key: str = "-", log: str | os.PathLike[str] = "") -> None:
        """A job's process group started: kill it if the orchestrator dies. `key` names its
        containment (cgroup or marker), `log` the file that says what else was killed."""
        self._send(f"+{pgid} {key} {os.fsencode(log).hex()}", now=False)

    def contain(self, line: str) -> None:
        """The run's containment, as `Containment.guardian_lines` gives it."""
        self._send(line)

    def release(self, pgid: int, *, now: bool = True) -> None:
        """A job ended: its group id may be reused, never kill it any more. Written at once
        (with any registration waiting) when the caller reaps the group's leader next and the
        guardian signals groups; with the next batch (`now` False) when it signals none."""
        self._send(f"-{pgid}", now=now)

    def close(self) -> None:
        """A clean exit: tell the guardian nothing is left, end it, reap it.

        It is killed rather than left to notice: it would only do so after its nap and its
        interpreter's shutdown, 50-60 ms that every run's end (and its last report) waited for.
        The `exit` line first, so even a guardian the signal missed kills nothing."""
        if self._closed:
            return
        self._send("exit")
        self._closed = True
        try:
            os.kill(self.pid, signal.SIGKILL)  # our child, not yet reaped: its pid is its own
        except ProcessLookupError:
            pass
        os.close(self._write_end)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
