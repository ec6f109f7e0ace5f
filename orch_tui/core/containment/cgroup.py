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
    """One job group's folder and control files, as text: they are written per job launch."""

    path: Path
    procs: str
    kill: str

    @classmethod
    def at(cls, path: Path) -> _Group:
        """The group whose folder is `path`."""
        return cls(path, f"{path}/cgroup.procs", f"{path}/cgroup.kill")


# The run's groups: the ones in use, the free ones, the ones to remove, our own.
# pylint: disable-next=too-many-instance-attributes
class CgroupContainment(Containment):
    """A cgroup v2 group per job attempt under `<own group>/orch-tui-<run token>/`.

    The child is born in its group: the orchestrator moves itself into the job's group around
    posix_spawn and back, so no fork of a fast child can happen before it is placed, unlike
    writing the child's pid afterwards.

    A group its job left empty (nothing left behind, the main process reaped) is kept for the
    next job instead of being removed: creating a group, removing it and the first move into a
    new one cost three times what moving into a used one does (`tests/bench/bench_budget.py`).
    A group that held leftovers is never reused: it is removed once they are gone."""

    mode = "cgroup"

    def __init__(self, run_token: str, own: Path, run: Path) -> None:
        super().__init__(run_token)
        self.own = own
        self.run = run
        self._pid = str(os.getpid()).encode()
        self._own_procs = f"{own}/cgroup.procs"
        self._groups: dict[int, _Group] = {}
        self._free: list[_Group] = []  # empty groups of ended jobs, ready for the next
        self._empty: set[int] = set()  # ended jobs whose group was found empty
        self._pending: list[Path] = []
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
            except OSError as exc:
                raise ContainmentError(f"cgroup v2 unusable: cannot move processes under {own}: "
                                       f"{exc.strerror or exc}") from None
        except BaseException:
            with contextlib.suppress(OSError):
                os.rmdir(run)
            raise
        return cls(run_token, own, run)

    @contextlib.contextmanager
    def spawning(self, job_id: int) -> Iterator[None]:
        group = self._free.pop() if self._free else None
        try:
            if group is None:
                self._count += 1
                group = _Group.at(self.run / f"job-{self._count}")
                os.mkdir(group.path, 0o755)
            write_to(group.procs, self._pid)
        except OSError as exc:
            assert group is not None
            with contextlib.suppress(OSError):
                os.rmdir(group.path)
            raise SpawnError(
                f"cannot place the job in its cgroup {group.path}: "
                f"{exc.strerror or exc}",
                systemic=True) from None
        try:
            yield
        except BaseException:
            self._leave(group.path)
            self._free.append(group)  # nothing was born in it: still empty
            raise
        self._leave(group.path)
        self._groups[job_id] = group

    def _leave(self, group: Path) -> None:
        """Back to our own group; staying would put us in the job's cgroup.kill."""
        try:
            write_to(self._own_procs, self._pid)
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
            return {int(pid) for pid in read_all(group.procs).split()}
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
        try:
            os.rmdir(group.path)  # a job's group has no child groups: no walk needed
        except FileNotFoundError:
            pass
        except OSError:
            self._pending.append(group.path)  # killed members are still dying

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        if self._pending:
            self._pending = [group for group in self._pending if not _remove_tree(group)]

    def close(self) -> None:
        self._kill_group(_Group.at(self.run))
        deadline = time.monotonic() + SETTLE_SECONDS
        while _populated(self.run) and time.monotonic() < deadline:
            time.sleep(0.01)
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


def find_cgroup2(root: Path | None = None) -> tuple[Path, str]:
    """(cgroup v2 mount point, our group's path in it) from /proc/self/mountinfo and the `0::`
    line of /proc/self/cgroup; `root` overrides the mount. ContainmentError when there is none."""
    try:
        lines = read_all("/proc/self/cgroup").decode(errors="replace").splitlines()
    except OSError as exc:
        raise ContainmentError(f"cgroup v2 unusable: /proc/self/cgroup: {exc.strerror}") from None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        raise ContainmentError("cgroup v2 unusable: this process is in no cgroup v2 group")
    if root is not None:
        return root, own
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
            return Path(_unescape(parts[4])), own
    raise ContainmentError("cgroup v2 unusable: no cgroup2 filesystem is mounted")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field
