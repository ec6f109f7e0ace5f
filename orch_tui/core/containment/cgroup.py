"""Cgroup v2 containment: a group per job attempt, born in it, killed all at once."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from orch_tui.core import procfs
from orch_tui.core.containment.base import (SETTLE_SECONDS, Containment, ContainmentError, kill_pid,
                                            read_all, write_to)
from orch_tui.core.errors import SpawnError


class CgroupContainment(Containment):
    """A cgroup v2 group per job attempt under `<own group>/orch-tui-<run token>/`.

    The child is born in its group: the orchestrator moves itself into the job's group around
    posix_spawn and back (about 20 us per move here), so no fork of a fast child can happen
    before it is placed, unlike writing the child's pid afterwards."""

    mode = "cgroup"

    def __init__(self, run_token: str, own: Path, run: Path) -> None:
        super().__init__(run_token)
        self.own = own
        self.run = run
        self._pid = str(os.getpid()).encode()
        self._groups: dict[int, Path] = {}
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
        self._count += 1
        group = self.run / f"job-{job_id}-{self._count}"
        try:
            os.mkdir(group, 0o755)
            write_to(group / "cgroup.procs", self._pid)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(group)
            raise SpawnError(
                f"cannot place the job in its cgroup {group}: "
                f"{exc.strerror or exc}",
                systemic=True) from None
        try:
            yield
        except BaseException:
            self._leave(group)
            with contextlib.suppress(OSError):
                os.rmdir(group)
            raise
        self._leave(group)
        self._groups[job_id] = group

    def _leave(self, group: Path) -> None:
        """Back to our own group; staying would put us in the job's cgroup.kill."""
        try:
            write_to(self.own / "cgroup.procs", self._pid)
        except OSError as exc:
            self._stuck = group
            raise ContainmentError(f"cannot leave the job's cgroup {group}: "
                                   f"{exc.strerror or exc}") from None

    def started(self, job_id: int, pid: int) -> None:
        pass  # the group is the membership

    def guardian_key(self, job_id: int) -> str:
        return self._groups[job_id].name

    def guardian_lines(self) -> list[str]:
        return [f"c{bytes(self.run).hex()}"]

    @staticmethod
    def _procs(group: Path) -> set[int]:
        try:
            return {int(pid) for pid in read_all(group / "cgroup.procs").split()}
        except (OSError, ValueError):
            return set()

    def members(self, table: Mapping[int, procfs.ProcStat],
                job_ids: Iterable[int]) -> dict[int, set[int]]:
        found = {}
        for job_id in job_ids:
            group = self._groups.get(job_id)
            found[job_id] = self._procs(group) if group is not None else set()
        return found

    def _kill_group(self, group: Path) -> None:
        if group == self._stuck:
            me = os.getpid()  # never kill ourselves: signal the others one by one
            for pid in self._procs(group) - {me}:
                kill_pid(pid, signal.SIGKILL)
            return
        with contextlib.suppress(OSError):
            write_to(group / "cgroup.kill", b"1")

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
        return len(left)

    def finished(self, job_id: int) -> None:
        group = self._groups.pop(job_id, None)
        if group is None:
            return
        try:
            os.rmdir(group)  # a job's group has no child groups: no walk needed
        except FileNotFoundError:
            pass
        except OSError:
            self._pending.append(group)  # killed members are still dying

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        if self._pending:
            self._pending = [group for group in self._pending if not _remove_tree(group)]

    def close(self) -> None:
        self._kill_group(self.run)
        deadline = time.monotonic() + SETTLE_SECONDS
        while _populated(self.run) and time.monotonic() < deadline:
            time.sleep(0.01)
        _remove_tree(self.run)
        self._groups.clear()
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
