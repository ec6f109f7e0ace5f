"""Cgroup v2 containment: a group per job attempt, born in it, killed all at once."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from orch_tui.core import procfs
from orch_tui.core.containment.base import (SETTLE_SECONDS, Containment, ContainmentError, kill_pid,
                                            read_all, write_to)
from orch_tui.core.errors import SpawnError


@dataclass(frozen=True, slots=True)
class _Group:
    """One job group's folder and control files, as text, and its cgroup.procs held open for
    reading and writing (-1 for the run's own group): moving into it is one write and listing
    its members one pread, not an open and a close of a path kernfs must walk."""

    path: Path
    procs: str
    kill: str
    fd: int = -1

    @classmethod
    def at(cls, path: Path, fd: int = -1) -> _Group:
        """The group whose folder is `path`."""
        return cls(path, f"{path}/cgroup.procs", f"{path}/cgroup.kill", fd)

    def members(self) -> bytes:
        """Its cgroup.procs, read afresh (kernfs regenerates it for a read at offset 0)."""
        if self.fd < 0:
            return read_all(self.procs)
        data = b""
        while chunk := os.pread(self.fd, 65536, len(data)):
            data += chunk
        return data

    def close(self) -> None:
        """Let go of its cgroup.procs (before the folder goes, or at the end)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)


class _Here:  # pylint: disable=too-few-public-methods  # one process-wide fact
    """The job group this process is in (None: its own group). Several runs in one process
    share it: a run whose parked group another run moved the process out of moves back in
    before its next spawn."""

    group: _Group | None = None


# The run's groups: the ones in use, the free ones, the ones to remove, our own.
# pylint: disable-next=too-many-instance-attributes
class CgroupContainment(Containment):
    """A cgroup v2 group per job attempt under `<own group>/orch-tui-<run token>/`.

    The child is born in its group: the orchestrator waits for each job in the group that job
    will have ("parked" there), spawns it, then moves on into the next job's group, so no fork
    of a fast child can happen before it is placed, unlike writing the child's pid afterwards.
    That is one move of the orchestrator per job, where going in and back out was two.

    A group its job left empty (nothing left behind, the main process reaped) is kept for a later
    job instead of being removed: creating a group, removing it and the first move into a new
    one cost three times what moving into a used one does (`tests/bench/bench_budget.py`).
    A group that held leftovers is never reused: it is removed once they are gone."""

    mode = "cgroup"
    guardian_kills_all = True  # the run group's cgroup.kill reaches every process of every job

    def __init__(self, run_token: str, own: Path, run: Path, own_path: str = "/") -> None:
        super().__init__(run_token)
        self.own = own
        self.run = run
        #: Our own and the run's group as /proc/self/cgroup names them (see find_cgroup2).
        self.own_path = own_path
        self.run_path = f"{own_path.rstrip('/')}/{run.name}"
        self._pid = str(os.getpid()).encode()
        self._own_fd = os.open(f"{own}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        self._groups: dict[int, _Group] = {}
        self._free: list[_Group] = []  # empty groups of ended jobs, ready for the next
        self._parked: _Group | None = None  # the next job's group, which we are in
        self._empty: set[int] = set()  # ended jobs whose group was found empty
        self._pending: list[_Group] = []
        self._count = 0
        self._stuck: Path | None = None

    @classmethod
    def create(cls, run_token: str, root: Path | None = None) -> CgroupContainment:
        """Probe and set up the run group; ContainmentError (everything undone) if unusable."""
        mount, own_path = find_cgroup2(root)
        own = mount / own_path.lstrip("/")
        run = own / f"orch-tui-{run_token}"
        try:
            os.mkdir(run, 0o755)
        except OSError as exc:
            raise ContainmentError(f"cgroup v2 unusable: cannot create {run}: "
                                   f"{exc.strerror or exc}") from None
        try:
            if not (run / "cgroup.kill").exists():
                raise ContainmentError(f"cgroup v2 at {mount} has no cgroup.kill "
                                       "(Linux 5.14 or later is needed)")
            pid = str(os.getpid()).encode()
            try:
                write_to(run / "cgroup.procs", pid)
                write_to(own / "cgroup.procs", pid)
                _Here.group = None
                containment = cls(run_token, own, run, own_path)
            except OSError as exc:
                raise ContainmentError(f"cgroup v2 unusable: cannot move processes under {own}: "
                                       f"{exc.strerror or exc}") from None
            _LIVE.append(containment)
            return containment
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(run)
            raise

    @contextlib.contextmanager
    def spawning(self, job_id: int) -> Iterator[None]:
        group = self._parked
        if group is not None and _Here.group is not group and self._enter(group) is not None:
            group = None  # another run of this process moved us since, and we cannot go back
        if group is None:
            group = self._enter_new()
        self._parked = None
        try:
            yield
        except BaseException:
            self._parked = group  # nothing was born in it: still empty, still the next one's
            raise
        self._groups[job_id] = group
        self._park(group)

    def _take(self) -> _Group:
        """A free group, or a new one (OSError when it cannot be made)."""
        if self._free:
            return self._free.pop()
        self._count += 1
        path = self.run / f"job-{self._count}"
        os.mkdir(path, 0o755)
        try:
            return _Group.at(path, os.open(f"{path}/cgroup.procs", os.O_RDWR | os.O_CLOEXEC))
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(path)
            raise

    def _enter_new(self) -> _Group:
        """Into a group for the job about to start (none was parked in: the first job, or the
        move after the last spawn failed)."""
        try:
            group = self._take()
        except OSError as exc:
            raise SpawnError(
                f"cannot make the job's cgroup under {self.run}: "
                f"{exc.strerror or exc}",
                systemic=True) from None
        error = self._enter(group)
        if error is not None:
            raise SpawnError(
                f"cannot place the job in its cgroup {group.path}: "
                f"{error.strerror or error}",
                systemic=True)
        return group

    def _park(self, left: _Group) -> None:
        """Out of the group `left`, now the job's alone: into the next job's group, or, when
        that cannot be had, back to our own (staying would put us in the job's cgroup.kill)."""
        try:
            group: _Group | None = self._take()
        except OSError:
            group = None
        if group is None or self._enter(group) is not None:
            self._leave(left.path)
            return
        self._parked = group

    def _enter(self, group: _Group) -> OSError | None:
        """Move this process into `group`: None, or why not (the group, which nothing entered,
        back among the free ones)."""
        try:
            os.write(group.fd, self._pid)
        except OSError as exc:
            self._free.append(group)
            return exc
        _Here.group = group
        return None

    def _leave(self, group: Path) -> None:
        """Back to our own group from `group`."""
        try:
            os.write(self._own_fd, self._pid)
            _Here.group = None
        except OSError as exc:
            self._stuck = group
            raise ContainmentError(f"cannot leave the job's cgroup {group}: "
                                   f"{exc.strerror or exc}") from None

    def started(self, job_id: int, pid: int) -> None:
        pass  # the group is the membership

    def guardian_key(self, job_id: int) -> str:
        return self._groups[job_id].path.name

    def guardian_lines(self) -> list[str]:
        return [f"c{bytes(self.run).hex()}"]

    @staticmethod
    def _procs(group: _Group) -> set[int]:
        try:
            return {int(pid) for pid in group.members().split()}
        except (OSError, ValueError):
            return set()

    def members(self, table: Mapping[int, procfs.ProcStat],
                job_ids: Iterable[int]) -> dict[int, set[int]]:
        found = {}
        for job_id in job_ids:
            group = self._groups.get(job_id)
            found[job_id] = self._procs(group) if group is not None else set()
        return found

    def _kill_group(self, group: _Group) -> None:
        if group.path == self._stuck:
            me = os.getpid()  # never kill ourselves: signal the others one by one
            for pid in self._procs(group) - {me}:
                kill_pid(pid, signal.SIGKILL)
            return
        with contextlib.suppress(OSError):
            write_to(group.kill, b"1")

    def kill(self, job_id: int) -> None:
        group = self._groups.get(job_id)
        if group is not None:
            self._kill_group(group)

    def kill_leftovers(self, job_id: int) -> int:
        group = self._groups.get(job_id)
        if group is None:
            return 0
        left = self._procs(group)  # the main process is a zombie: no longer listed
        if left:
            self._kill_group(group)
        elif group.path != self._stuck:
            # Empty for good: only a member can fork into it, and its last one is a zombie.
            self._empty.add(job_id)
        return len(left)

    def finished(self, job_id: int) -> None:
        group = self._groups.pop(job_id, None)
        if group is None:
            return
        if job_id in self._empty:
            self._empty.discard(job_id)
            self._free.append(group)
            return
        group.close()
        try:
            os.rmdir(group.path)  # a job's group has no child groups: no walk needed
        except FileNotFoundError:
            pass
        except OSError:
            self._pending.append(group)  # killed members are still dying

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        if self._pending:
            self._pending = [group for group in self._pending if not _remove_tree(group.path)]

    def _every_group(self) -> tuple[_Group, ...]:
        """The run's job groups: in use, free and waiting to be removed."""
        return (*self._groups.values(), *self._free, *self._pending)

    def close(self) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
        if self._parked is not None:
            parked, self._parked = self._parked, None
            self._free.append(parked)
            if _Here.group is parked:
                with contextlib.suppress(ContainmentError):
                    self._leave(parked.path)  # out before the run's cgroup.kill
        if self._stuck is None:
            self._kill_group(_Group.at(self.run))
        else:  # in the run's tree still: each group on its own, ours one process at a time
            for group in self._every_group():
                self._kill_group(group)
        deadline = time.monotonic() + SETTLE_SECONDS
        while self._stuck is None and _populated(self.run) and time.monotonic() < deadline:
            time.sleep(0.01)
        for group in self._every_group():
            group.close()
        if self._own_fd >= 0:
            os.close(self._own_fd)
            self._own_fd = -1
        _remove_tree(self.run)
        self._groups.clear()
        self._free.clear()
        self._empty.clear()
        self._pending.clear()


def _populated(group: Path) -> bool:
    try:
        return b"populated 1" in read_all(group / "cgroup.events")
    except OSError:
        return False


def _remove_tree(group: Path) -> bool:
    """rmdir a cgroup and its child groups, deepest first; True when it is gone."""
    for top, dirs, _ in os.walk(group, topdown=False):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(top, name))
    try:
        os.rmdir(group)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


#: The containments of this process's runs, open: while one waits in a job's group, that group
#: is what /proc/self/cgroup says, and our own group is the one it came from.
_LIVE: list[CgroupContainment] = []


def find_cgroup2(root: Path | None = None) -> tuple[Path, str]:
    """(cgroup v2 mount point, our group's path in it) from /proc/self/mountinfo and the `0::`
    line of /proc/self/cgroup; `root` overrides the mount. ContainmentError when there is none.
    A process waiting in one of its runs' job groups is given the group it came from: a second
    run in the same process must never nest its groups in the first's."""
    try:
        lines = read_all("/proc/self/cgroup").decode(errors="replace").splitlines()
    except OSError as exc:
        raise ContainmentError(f"cgroup v2 unusable: /proc/self/cgroup: {exc.strerror}") from None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        raise ContainmentError("cgroup v2 unusable: this process is in no cgroup v2 group")
    if root is not None:
        return root, _home(own)
    try:
        mounts = read_all("/proc/self/mountinfo").decode(errors="replace").splitlines()
    except OSError as exc:
        raise ContainmentError(
            f"cgroup v2 unusable: /proc/self/mountinfo: {exc.strerror}") from None
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if tail.split()[:1] == ["cgroup2"] and len(parts) >= 5:
            mount_root = _unescape(parts[3])
            if mount_root != "/" and (own + "/").startswith(mount_root + "/"):
                own = own[len(mount_root):] or "/"  # a bind mount of a subtree
            return Path(_unescape(parts[4])), _home(own)
    raise ContainmentError("cgroup v2 unusable: no cgroup2 filesystem is mounted")


def _home(own: str) -> str:
    """`own`, or the group it was moved out of when it is one of our open runs' groups."""
    for live in _LIVE:
        if own == live.run_path or own.startswith(live.run_path + "/"):
            return live.own_path
    return own


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
