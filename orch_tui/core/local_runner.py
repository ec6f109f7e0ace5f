"""`LocalRunner`: the runner interface (core/runner.py) for jobs on this machine.

Built for cost: `os.posix_spawn` (vfork+exec, no Python-level fork), a pidfd per child in an
epoll set of the runner's own, which the event loop watches as one reader (no thread per child,
unlike Python 3.11's default asyncio child watcher, and no loop handle and selector key made and
dropped per child), `wait4` for the child's own CPU and peak-RSS accounting, and one /proc sweep
per sample for every job at once. Node figures are the host's, or its cgroup's where those are
tighter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import resource
import secrets
import select
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil

from orch_tui.core import cgroupfs, procfs
from orch_tui.core.containment import (MARKER_VARIABLE, Containment, append_note, left_behind_note,
                                       select_containment)
from orch_tui.core.errors import OrchError, SpawnError
from orch_tui.core.fsutil import existing_ancestor, file_size
from orch_tui.core.guardian import Guardian
from orch_tui.core.plan import JobSpec
from orch_tui.core.probes import JobProbe
from orch_tui.core.scaling import CapacitySource
from orch_tui.core.runner import (ExitCallback, ExitStatus, NodeStats, ProcessSample, Runner,
                                  Started)
from orch_tui.core.statedir import StateDir, UnsafeFileError, is_systemic


@dataclass(slots=True)
class _Child:
    spec: JobSpec
    pid: int
    pidfd: int
    on_exit: ExitCallback
    probe: JobProbe
    kill_handle: asyncio.TimerHandle | None = None


def _own_peak(child_maxrss: int) -> int:
    """A reaped job's peak RSS in bytes, or 0 when wait4 cannot tell it. A posix_spawn child
    shares this process's memory until its exec, and the kernel keeps that memory's high-water
    mark as the child's: a 2 MiB `cp` reported this process's 31 MiB. A figure above this
    process's own peak (ru_maxrss) is the job's own; at or below it, it may be ours, and the
    monitor's samples of the job's tree are all there is."""
    return child_maxrss * 1024 if child_maxrss > resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss else 0


# The local node's children, containment and pid tables.
# pylint: disable-next=too-many-instance-attributes
class LocalRunner(Runner):
    """Runs jobs as children of this process, each in its own session and process group."""

    measures_log_start = True

    # pylint: disable-next=too-many-arguments  # keyword-only options of the local node
    def __init__(self,
                 output_dir: Path,
                 *,
                 loop: asyncio.AbstractEventLoop | None = None,
                 guardian: bool = True,
                 state: StateDir | None = None,
                 run_token: str | None = None,
                 containment: Containment | None = None) -> None:
        self.node = socket.gethostname()
        self.run_token = run_token or secrets.token_hex(8)
        # The children's pidfds, readable once they exit (first: out of descriptors, nothing
        # below has been made yet, but for a containment handed in, which is ours to close).
        try:
            self._exits = select.epoll()
        except BaseException:
            if containment is not None:
                containment.close()
            raise
        self._exiting: dict[int, int] = {}  # pidfd -> job id
        # Logs are created relative to the checked, private state folder (never through a
        # planted symlink); a runner built without a session opens that folder itself.
        self._own_state = state is None
        self._state = state if state is not None else StateDir.open(output_dir)
        # Every process a job starts stays findable and killable (core/containment/): chosen before
        # the guardian, which must know it too.
        self._containment = containment or select_containment(self.run_token)
        # One environment for every job, plus its ORCH_TUI_JOB marker: built once, not per spawn.
        self._environ = dict(os.environb)
        self._loop = loop or asyncio.get_running_loop()
        try:
            self._guardian = Guardian(self._loop) if guardian else None
        except BaseException as exc:
            self._containment.close()  # its run group must not outlive a runner never used
            if self._own_state:
                self._state.close()
            if isinstance(exc, OSError):
                raise OrchError(f"cannot start the guardian process: {exc.strerror}") from None
            raise
        if self._guardian is not None:
            self._containment.ignore_child(self._guardian.pid)
            for line in self._containment.guardian_lines():
                self._guardian.contain(line)
        self._output_dir = output_dir
        self._children: dict[int, _Child] = {}
        self._closing = False  # close() was called: the last reap closes the epoll set
        self._loop.add_reader(self._exits.fileno(), self._on_exits)
        self._cpu = procfs.CpuMeter()
        self._offsets = procfs.ReadOffsetTracker()
        self._last_table: dict[int, procfs.ProcStat] = {}
        self._table_time = float("-inf")
        self._cores = len(os.sched_getaffinity(0))
        self._groups = cgroupfs.find_groups()
        psutil.cpu_percent(None)  # prime the system CPU counter: the next call measures since now

    # --- starting and reaping

    async def start(self, spec: JobSpec, on_exit: ExitCallback) -> Started:
        # Nothing to wait for on this machine: posix_spawn returns once the child exists.
        log_fd = self._open_log(spec)
        probe = JobProbe.over(log_fd, spec)  # it owns the descriptor from here: one open a job
        argv = spec.argv  # expanded from the plan's templates: once
        try:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ]
            environ = self._environ.copy()
            environ[MARKER_VARIABLE.encode()] = self._containment.marker(spec.job_id).encode()
            try:
                with self._containment.spawning(spec.job_id):
                    pid = os.posix_spawn(argv[0],
                                         argv,
                                         environ,
                                         file_actions=actions,
                                         setsid=True,
                                         setsigdef=_RESTORED_SIGNALS,
                                         setsigmask=())
            except OSError as exc:
                _write_quietly(log_fd, f"orch-tui: cannot execute {argv[0]}: {exc.strerror}\n")
                raise SpawnError(f"cannot execute {argv[0]}: {exc.strerror}",
                                 systemic=exc.errno in _SPAWN_SYSTEMIC) from exc
        except BaseException:
            probe.close()
            raise
        self._containment.started(spec.job_id, pid)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            # Out of descriptors: a child we cannot watch must not run unwatched.
            self._signal_group(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            self._containment.kill(spec.job_id)
            self._containment.finished(spec.job_id)
            probe.close()
            raise SpawnError(f"cannot watch the job: {exc.strerror}", systemic=True) from None
        if self._guardian is not None:
            self._guardian.watch(pid, self._containment.guardian_key(spec.job_id),
                                 spec.log_location)
        self._children[spec.job_id] = _Child(spec, pid, pidfd, on_exit, probe)
        self._exiting[pidfd] = spec.job_id
        self._exits.register(pidfd, select.EPOLLIN)
        return Started(self.node, pid, probe.log_start)

    def _open_log(self, spec: JobSpec) -> int:
        """The job's log, 0o600 in the private logs folder, never through a planted link.

        A full, read-only or exhausted filesystem is systemic (stop launching, the job is not
        charged with it); a planted link or a foreign file fails this job alone."""
        try:
            # Read-write: the job writes through its own copies, the probe reads this one.
            return self._state.open_log(spec.log_location, os.O_RDWR | os.O_APPEND)
        except UnsafeFileError as exc:
            raise SpawnError(f"cannot create its log: {exc}") from None
        except OSError as exc:
            raise SpawnError(f"cannot create its log {spec.log_path}: {exc.strerror or exc}",
                             systemic=is_systemic(exc)) from None

    def _on_exits(self) -> None:
        """Some children exited: reap each (a start in a reap adds to the set as it goes)."""
        for pidfd, _ in self._exits.poll(0):
            job_id = self._exiting.pop(pidfd, None)
            if job_id is not None:
                self._reap(job_id)

    def _reap(self, job_id: int) -> None:
        child = self._children.pop(job_id)
        # Whatever it left running (in its group or not) dies with it, and its log says so.
        left = self._containment.kill_leftovers(job_id)
        if left:
            append_note(child.spec.log_path, left_behind_note(left))
        # The leader is a zombie until reaped, so its pid (== the group id) cannot be reused yet:
        # killing the group now safely takes down background leftovers, leaving no orphan.
        self._signal_group(child.pid, signal.SIGKILL)
        if self._guardian is not None:
            # Before the reap, the pgid cannot be reused yet; a guardian that signals no groups
            # can hear of it with the next batch.
            self._guardian.release(child.pid, now=not self._containment.guardian_kills_all)
        _, status, usage = os.wait4(child.pid, 0)
        self._containment.finished(job_id)
        # Out of the set before the close: a child spawned a moment ago holds a copy of every
        # descriptor until its exec closes them, and while any copy lives the closed number
        # stays registered, readable, and a new job's pidfd given that number is reaped alive.
        self._exits.unregister(child.pidfd)
        os.close(child.pidfd)
        if child.kill_handle is not None:
            child.kill_handle.cancel()
        self._offsets.forget(child.pid)
        child.probe.close()
        if os.WIFSIGNALED(status):
            code, sig = None, os.WTERMSIG(status)
        else:
            code, sig = os.waitstatus_to_exitcode(status), None
        result = ExitStatus(code, sig, usage.ru_utime + usage.ru_stime, _own_peak(usage.ru_maxrss))
        if self._closing and not self._children:
            self._close_exits()
        child.on_exit(job_id, result)

    # --- signals

    @staticmethod
    def _signal_group(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _signal_tree(self, child: _Child, sig: int) -> None:
        """Signal the job's process group, any descendant that left it (setsid/setpgid) and
        whatever its containment holds (daemons reparented away from its tree)."""
        if sig == signal.SIGKILL:
            self._containment.kill(child.spec.job_id)  # cgroup.kill: all at once
        self._signal_group(child.pid, sig)
        table = self._fresh_table()
        members = procfs.group_by_root(table, [child.pid]).get(child.pid, [])
        pids = {proc.pid for proc in members if proc.pgrp != child.pid}
        for pid in self._containment.members(table, [child.spec.job_id])[child.spec.job_id]:
            stat = table.get(pid) or procfs.read_stat(pid)
            if stat is not None and stat.pgrp != child.pid:  # the group had it already
                pids.add(pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _fresh_table(self) -> dict[int, procfs.ProcStat]:
        """The process table, rescanned unless a sweep just read it (pause-all signals many jobs
        in a row: one scan serves them all)."""
        now = self._loop.time()
        if now - self._table_time > 0.2:
            self._last_table = procfs.scan_processes()
            self._table_time = now
        return self._last_table

    def pause(self, job_id: int) -> None:
        child = self._children.get(job_id)
        if child is not None:
            self._signal_tree(child, signal.SIGSTOP)

    def resume(self, job_id: int) -> None:
        child = self._children.get(job_id)
        if child is not None:
            self._signal_tree(child, signal.SIGCONT)

    def terminate(self, job_id: int, grace: float) -> None:
        child = self._children.get(job_id)
        if child is None:
            return
        self._signal_tree(child, signal.SIGTERM)
        self._signal_tree(child, signal.SIGCONT)
        # SIGKILL no later than `grace` from now: a second ask with less grace (the operator's
        # kill of a job already stopping) brings it forward, never back.
        handle = child.kill_handle
        if handle is None or handle.when() > self._loop.time() + grace:
            if handle is not None:
                handle.cancel()
            child.kill_handle = self._loop.call_later(grace, self._escalate, job_id)

    def _escalate(self, job_id: int) -> None:
        child = self._children.get(job_id)
        if child is not None:
            child.kill_handle = None
            self._signal_tree(child, signal.SIGKILL)

    def kill_all(self) -> None:
        for child in list(self._children.values()):
            self._signal_tree(child, signal.SIGKILL)

    def close(self) -> None:
        """The run is over: kill whatever is left, remove its containment, dismiss the
        guardian."""
        self.kill_all()
        for child in self._children.values():
            child.probe.close()
        self._containment.close()
        if self._guardian is not None:
            self._guardian.close()
            self._guardian = None
        self._closing = True
        if not self._children:  # otherwise the last reap of the killed ones does it
            self._close_exits()
        if self._own_state:
            self._state.close()
            self._own_state = False

    def _close_exits(self) -> None:
        if not self._exits.closed:
            self._loop.remove_reader(self._exits.fileno())
            self._exits.close()

    def pid_of(self, job_id: int) -> int | None:
        """The main process id of a running job (tests and diagnostics only)."""
        child = self._children.get(job_id)
        return child.pid if child else None

    # --- sampling

    def sample(self) -> dict[int, ProcessSample]:
        if not self._children:
            return {}
        table = procfs.scan_processes()
        self._last_table, self._table_time = table, self._loop.time()
        roots = {child.pid: job_id for job_id, child in self._children.items()}
        groups = procfs.group_by_root(table, roots)
        # A daemon that left the tree is still the job's: its CPU and memory count.
        extra = self._containment.members(table, roots.values())
        for root, members in groups.items():
            seen = {p.pid for p in members}
            members.extend(table[pid] for pid in extra[roots[root]] - seen if pid in table)
        self._containment.tidy(table)
        now = self._loop.time()
        cores = self._cpu.update((p for members in groups.values() for p in members), now)
        samples: dict[int, ProcessSample] = {}
        for root, members in groups.items():
            job_id = roots[root]
            child = self._children[job_id]
            spec = child.spec
            offset = self._offsets.offset([p.pid for p in members], spec.input_path)
            samples[job_id] = ProcessSample(
                job_id=job_id,
                node=self.node,
                pid=root,
                cpu_cores=sum(cores.get(p.pid, 0.0) for p in members),
                rss_bytes=sum(p.rss_bytes for p in members),
                processes=len(members),
                read_offset=offset,
                output_bytes=file_size(spec.temp_output_path),
                progress=child.probe.read(now),
            )
        return samples

    def stats(self) -> dict[str, NodeStats]:
        return {self.node: self.node_stats()}

    def node_stats(self) -> NodeStats:
        """This machine's figures (its only node): the host's, or our cgroup's where tighter."""
        return machine_stats(self.node, self._cores, self._groups, self._output_dir)


def machine_stats(node: str, cores: int, groups: cgroupfs.Groups,
                  disk_path: Path | None) -> NodeStats:
    """This machine's figures, the host's or our cgroup's where tighter, with the free space of
    the filesystem holding `disk_path` (none asked: 0; a cluster node leaves the shared output
    filesystem to the driver)."""
    memory = psutil.virtual_memory()
    free = total = 0
    if disk_path is not None:
        try:
            disk = psutil.disk_usage(str(existing_ancestor(disk_path)))
            free, total = disk.free, disk.total
        except OSError:
            pass
    return tighter(
        NodeStats(node=node,
                  logical_cores=cores,
                  cpu_percent=psutil.cpu_percent(None),
                  total_memory=memory.total,
                  available_memory=memory.available,
                  free_disk=free,
                  disk_total=total), cgroupfs.read_limits(groups))


def tighter(host: NodeStats, group: cgroupfs.CgroupLimits) -> NodeStats:
    """The host's figures with the cgroup's limits applied where they are tighter: a limit below
    the host's RAM is the memory there is (and its headroom, when less, the headroom); a quota
    below the affinity is the cores there are."""
    stats = host
    if group.memory_limit is not None and group.memory_limit < host.total_memory:
        available = min(host.available_memory, group.available_memory or 0)
        stats = dataclasses.replace(stats,
                                    total_memory=group.memory_limit,
                                    available_memory=available,
                                    memory_source=CapacitySource.CGROUP)
    cores = group.cores
    if cores is not None and cores < host.logical_cores:
        stats = dataclasses.replace(stats, logical_cores=cores, cores_source=CapacitySource.CGROUP)
    return dataclasses.replace(stats, memory_pressure=group.memory_pressure)


#: What Python ignores at its start, and so would every job: a job killed by SIGPIPE at the end
#: of its pipe (`yes | head -1`) or by SIGXFSZ at RLIMIT_FSIZE, as from a shell, instead of
#: writing on into an error (subprocess's restore_signals resets the same two). Nothing is
#: blocked in a job either (setsigmask), whatever mask orch-tui was started with: a blocked
#: SIGTERM would turn every kill and timeout into SIGKILL after the grace period.
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

#: posix_spawn failures of the machine (no memory, no process slots, no descriptors), not of
#: the job's command.
_SPAWN_SYSTEMIC = frozenset({errno.EAGAIN, errno.ENOMEM, errno.EMFILE, errno.ENFILE})


def _write_quietly(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode())
    except OSError:
        pass  # the log's filesystem is full: the job's failure still says why
