"""Subreaper containment: our jobs' orphans become our children, and their ORCH_TUI_JOB marker
says whose they are."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterable, Mapping

from orch_tui.core import procfs
from orch_tui.core.containment.base import (MARKER_VARIABLE, SETTLE_SECONDS, Containment,
                                            ContainmentError, kill_pid, read_all)

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


class SubreaperContainment(Containment):
    """PR_SET_CHILD_SUBREAPER plus the ORCH_TUI_JOB marker: orphans of our jobs become our
    children, and the marker tells which job each belongs to.

    Adopted zombies are reaped with waitpid on their own pid, and only those known as a job's
    (never waitpid(-1), never a job's main process, never a child someone else started)."""

    mode = "subreaper"

    def __init__(self, run_token: str) -> None:
        super().__init__(run_token)
        self._libc = ctypes.CDLL(None, use_errno=True)
        flag = ctypes.c_int(0)
        self._libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
        self._was_subreaper = bool(flag.value)
        if not self._was_subreaper and self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0):
            err = ctypes.get_errno()
            raise ContainmentError(f"cannot become a child subreaper: {os.strerror(err)}")
        self._me = os.getpid()
        self._prefix = f"{MARKER_VARIABLE}={run_token}:".encode()
        self._mains: dict[int, int] = {}  # job id -> main pid
        self._own_children: set[int] = set()  # children of ours that are no job's (the guardian)
        self._adopted: dict[int, tuple[int, int]] = {}  # pid -> (job id, starttime)

    def started(self, job_id: int, pid: int) -> None:
        self._mains[job_id] = pid

    def ignore_child(self, pid: int) -> None:
        self._own_children.add(pid)

    def guardian_key(self, job_id: int) -> str:
        return str(job_id)

    def guardian_lines(self) -> list[str]:
        return [f"m{self.run_token}:"]

    def _job_of(self, stat: procfs.ProcStat, sessions: Mapping[int, int]) -> int | None:
        """Which job a child of ours belongs to: remembered, the job's session, or its marker."""
        known = self._adopted.get(stat.pid)
        if known is not None and known[1] == stat.starttime:
            return known[0]
        if stat.session in sessions:
            return sessions[stat.session]
        try:
            environ = read_all(f"/proc/{stat.pid}/environ")
        except OSError:
            return None
        for entry in environ.split(b"\0"):
            if entry.startswith(self._prefix):
                try:
                    job_id = int(entry[len(self._prefix):])
                except ValueError:
                    return None
                return job_id if job_id in self._mains else None
        return None

    def _classify(self, table: Mapping[int, procfs.ProcStat]) -> dict[int, set[int]]:
        """job id -> pids of the live processes descending from its adopted children; reaps the
        job's adopted zombies on the way."""
        mains = set(self._mains.values())
        sessions = {pid: job_id for job_id, pid in self._mains.items()}
        children: dict[int, list[int]] = {}
        for stat in table.values():
            children.setdefault(stat.ppid, []).append(stat.pid)
        found: dict[int, set[int]] = {}
        for pid in children.get(self._me, ()):
            stat = table[pid]
            if pid in mains:
                continue
            job_id = self._job_of(stat, sessions)
            if job_id is None:
                continue
            if stat.state in "ZX":
                self._reap(pid, stat.starttime)
                continue
            members = found.setdefault(job_id, set())
            pending = [pid]
            while pending:
                member = pending.pop()
                member_stat = table.get(member)
                if member in members or member_stat is None or member_stat.state in "ZX":
                    continue
                members.add(member)
                self._adopted[member] = (job_id, member_stat.starttime)
                pending.extend(children.get(member, ()))
        return found

    def _reap(self, pid: int, starttime: int) -> None:
        """waitpid one adopted zombie of ours (its pid cannot be reused before we do)."""
        self._adopted.pop(pid, None)
        stat = procfs.read_stat(pid)
        if stat is None or stat.starttime != starttime or stat.ppid != self._me:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    def members(self, table: Mapping[int, procfs.ProcStat],
                job_ids: Iterable[int]) -> dict[int, set[int]]:
        found = self._classify(table)
        return {job_id: found.get(job_id, set()) for job_id in job_ids}

    def kill(self, job_id: int) -> None:
        table = procfs.scan_processes()
        for pid in self._classify(table).get(job_id, ()):
            kill_pid(pid, signal.SIGKILL)

    def kill_leftovers(self, job_id: int) -> int:
        if not self._has_foreign_children():
            return 0  # the common case costs one small read, not a /proc scan
        table = procfs.scan_processes()
        left = self._classify(table).get(job_id, set())
        killed = sum(1 for pid in left if kill_pid(pid, signal.SIGKILL))
        return killed

    def _has_foreign_children(self) -> bool:
        """Whether we have a child that is not a job's main process (the only place a job's
        leftovers can be once its main process is gone: orphans come to the subreaper)."""
        mains = set(self._mains.values())
        try:
            tasks = os.listdir(f"/proc/{self._me}/task")
            kids: set[int] = set()
            for tid in tasks:
                kids.update(
                    int(p) for p in read_all(f"/proc/{self._me}/task/{tid}/children").split())
        except OSError:
            return True  # no children files (CONFIG_PROC_CHILDREN off): scan to be sure
        return bool(kids - mains - self._own_children)

    def finished(self, job_id: int) -> None:
        self._mains.pop(job_id, None)

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        if not self._adopted:
            return
        table = table if table is not None else procfs.scan_processes()
        for pid, (_, starttime) in list(self._adopted.items()):
            stat = table.get(pid)
            if stat is None or stat.starttime != starttime:
                self._adopted.pop(pid, None)  # gone (reaped by its parent) or never ours
            elif stat.state in "ZX" and stat.ppid == self._me:
                self._reap(pid, starttime)

    def close(self) -> None:
        for pids in self._classify(procfs.scan_processes()).values():
            for pid in pids:
                kill_pid(pid, signal.SIGKILL)
        deadline = time.monotonic() + SETTLE_SECONDS
        while self._adopted and time.monotonic() < deadline:
            self.tidy()
            if self._adopted:
                time.sleep(0.01)
        if not self._was_subreaper:
            self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
