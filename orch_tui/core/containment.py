"""Keeping each job's whole process tree findable and killable, even the parts that left it.

A descendant that calls setsid or double-forks leaves the job's process group and, once its
parent exits, the job's process tree: signalling the group misses it and it outlives the job.
Two ways to keep such processes, chosen once per runner (ORCH_TUI_CONTAINMENT=auto|cgroup|
subreaper, default auto: cgroup when it works here):

* `CgroupContainment`: one cgroup v2 group per job attempt, under a run group inside the
  orchestrator's own group (jobs never leave a container's limits). Leaving a cgroup takes
  privileges no job has, and `cgroup.kill` kills every member at once.
* `SubreaperContainment`: PR_SET_CHILD_SUBREAPER makes our jobs' orphans our children, and
  every job carries ORCH_TUI_JOB=<run token>:<job id> in its environment, so a daemon that
  setsid'd and was reparented to us is still known as the job's. A process that clears its
  environment and leaves the process group escapes it.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from orch_tui.core import procfs
from orch_tui.core.errors import OrchError, SpawnError

MODE_VARIABLE = "ORCH_TUI_CONTAINMENT"
#: The cgroup v2 mount to use instead of the one /proc/self/mountinfo names (tests, odd mounts).
ROOT_VARIABLE = "ORCH_TUI_CGROUP_ROOT"
MARKER_VARIABLE = "ORCH_TUI_JOB"
MODES = ("auto", "cgroup", "subreaper")

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
_SETTLE_SECONDS = 2.0  # how long closing waits for killed processes to be gone


class ContainmentError(OrchError):
    """The containment ORCH_TUI_CONTAINMENT asks for cannot be had here (exit 2, one line)."""


def left_behind_note(count: int) -> str:
    """The line a job's log gets when its main process left `count` processes running."""
    noun = "process" if count == 1 else "processes"
    return f"orch-tui: left {count} {noun} behind; killed\n"


def append_note(path: Path, text: str) -> None:
    """Append to an existing job log; never create one, never follow a link planted there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, text.encode())
    except OSError:
        pass  # a full filesystem: the kill itself still happened
    finally:
        os.close(fd)


def _read(path: str | Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write(path: str | Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _kill(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Containment(abc.ABC):
    """What the runner asks of a containment, keyed by job id (one attempt at a time)."""

    mode = ""

    def __init__(self, run_token: str) -> None:
        self.run_token = run_token

    def marker(self, job_id: int) -> str:
        """The value of ORCH_TUI_JOB in this job's environment."""
        return f"{self.run_token}:{job_id}"

    @contextlib.contextmanager
    def spawning(self, job_id: int) -> Iterator[None]:
        """Wraps the job's posix_spawn: whatever makes the child contained from birth."""
        del job_id
        yield

    @abc.abstractmethod
    def started(self, job_id: int, pid: int) -> None:
        """The job's main process is `pid`."""

    def ignore_child(self, pid: int) -> None:
        """`pid` is a child of ours that belongs to no job (the guardian)."""

    @abc.abstractmethod
    def guardian_key(self, job_id: int) -> str:
        """How the guardian names this job's containment (no spaces)."""

    @abc.abstractmethod
    def guardian_lines(self) -> list[str]:
        """What the guardian must know about the run (sent once, at start)."""

    @abc.abstractmethod
    def members(self, table: Mapping[int, procfs.ProcStat],
                job_ids: Iterable[int]) -> dict[int, set[int]]:
        """Live pids of each job that its process tree in `table` may not show."""

    @abc.abstractmethod
    def kill(self, job_id: int) -> None:
        """SIGKILL everything of a running job at once (beyond what signalling its tree does)."""

    @abc.abstractmethod
    def kill_leftovers(self, job_id: int) -> int:
        """The main process exited (a zombie, not yet reaped): SIGKILL what it left running;
        return how many processes that was."""

    @abc.abstractmethod
    def finished(self, job_id: int) -> None:
        """The job's main process was reaped: forget the job, remove what held it."""

    def tidy(self, table: Mapping[int, procfs.ProcStat] | None = None) -> None:
        """Now and then: finish removals and reaps that had to wait."""

    def close(self) -> None:
        """The run is over (every job reaped): kill any straggler, undo what start did."""


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
                _write(run / "cgroup.procs", pid)
                _write(own / "cgroup.procs", pid)
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
            _write(group / "cgroup.procs", self._pid)
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
            _write(self.own / "cgroup.procs", self._pid)
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
            return {int(pid) for pid in _read(group / "cgroup.procs").split()}
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
                _kill(pid, signal.SIGKILL)
            return
        with contextlib.suppress(OSError):
            _write(group / "cgroup.kill", b"1")

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
        deadline = time.monotonic() + _SETTLE_SECONDS
        while _populated(self.run) and time.monotonic() < deadline:
            time.sleep(0.01)
        _remove_tree(self.run)
        self._groups.clear()
        self._pending.clear()


def _populated(group: Path) -> bool:
    try:
        return b"populated 1" in _read(group / "cgroup.events")
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
        lines = _read("/proc/self/cgroup").decode(errors="replace").splitlines()
    except OSError as exc:
        raise ContainmentError(f"cgroup v2 unusable: /proc/self/cgroup: {exc.strerror}") from None
    own = next((line[3:] for line in lines if line.startswith("0::")), None)
    if own is None:
        raise ContainmentError("cgroup v2 unusable: this process is in no cgroup v2 group")
    if root is not None:
        return root, own
    try:
        mounts = _read("/proc/self/mountinfo").decode(errors="replace").splitlines()
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
            environ = _read(f"/proc/{stat.pid}/environ")
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
            _kill(pid, signal.SIGKILL)

    def kill_leftovers(self, job_id: int) -> int:
        if not self._has_foreign_children():
            return 0  # the common case costs one small read, not a /proc scan
        table = procfs.scan_processes()
        left = self._classify(table).get(job_id, set())
        killed = sum(1 for pid in left if _kill(pid, signal.SIGKILL))
        return killed

    def _has_foreign_children(self) -> bool:
        """Whether we have a child that is not a job's main process (the only place a job's
        leftovers can be once its main process is gone: orphans come to the subreaper)."""
        mains = set(self._mains.values())
        try:
            tasks = os.listdir(f"/proc/{self._me}/task")
            kids: set[int] = set()
            for tid in tasks:
                kids.update(int(p) for p in _read(f"/proc/{self._me}/task/{tid}/children").split())
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
                _kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _SETTLE_SECONDS
        while self._adopted and time.monotonic() < deadline:
            self.tidy()
            if self._adopted:
                time.sleep(0.01)
        if not self._was_subreaper:
            self._libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def select_containment(run_token: str,
                       mode: str | None = None,
                       *,
                       root: Path | None = None) -> Containment:
    """The containment ORCH_TUI_CONTAINMENT (or `mode`) asks for; auto prefers cgroups.

    ORCH_TUI_CGROUP_ROOT (or `root`) replaces the cgroup v2 mount found in mountinfo."""
    if mode is None:
        mode = os.environ.get(MODE_VARIABLE, "") or "auto"
    if mode not in MODES:
        raise ContainmentError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
    if root is None and os.environ.get(ROOT_VARIABLE):
        root = Path(os.environ[ROOT_VARIABLE])
    if mode != "subreaper":
        try:
            return CgroupContainment.create(run_token, root)
        except ContainmentError as exc:
            if mode == "cgroup":
                raise ContainmentError(f"{MODE_VARIABLE}=cgroup: {exc}") from None
    return SubreaperContainment(run_token)
