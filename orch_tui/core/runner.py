"""The runner interface: how jobs are started, signalled and measured, and the records it returns.

The scheduler addresses jobs by id only and learns about them through samples that name their
node, so a cluster runner (Dask distributed) can implement `Runner` beside `LocalRunner`
(core/local_runner.py) without the scheduler or any observer assuming a job is a local child.
"""

from __future__ import annotations

import abc
import signal
from collections.abc import Callable
from dataclasses import dataclass

from orch_tui.core.plan import JobSpec
from orch_tui.core.probes import Progress
from orch_tui.core.scaling import CapacitySource


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a job's main process ended, with its (and its reaped children's) resource usage."""

    exit_code: int | None
    signal: int | None
    cpu_seconds: float
    max_rss_bytes: int
    #: No exit to tell: the runner lost the process (a cluster whose scheduler or task went
    #: away); exit_code and signal are then None.
    lost: bool = False

    @property
    def ok(self) -> bool:
        """True when the process exited by itself with status 0."""
        return self.exit_code == 0

    def describe(self) -> str:
        """'exit 3' or 'signal SIGSEGV', for messages and tables."""
        if self.lost:
            return "given up: its runner lost it, with no exit status"
        if self.signal is not None:
            try:
                return f"signal {signal.Signals(self.signal).name}"
            except ValueError:
                return f"signal {self.signal}"
        return f"exit {self.exit_code}"


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure of a sample
class ProcessSample:
    """One sweep's figures for one job's process tree (summed over every process in it)."""

    job_id: int
    node: str
    pid: int
    cpu_cores: float
    rss_bytes: int
    processes: int
    read_offset: int | None
    output_bytes: int
    #: What the job's own log says (ffmpeg's status lines); None: the generic probe applies.
    progress: Progress | None = None


@dataclass(frozen=True, slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per figure of a node
class NodeStats:
    """A node's capacity now: what the scaling rule and the headroom gauges need."""

    node: str
    logical_cores: int
    cpu_percent: float
    total_memory: int
    available_memory: int
    free_disk: int
    disk_total: int
    cores_source: CapacitySource = CapacitySource.HOST  # a CPU quota tighter than the affinity
    memory_source: CapacitySource = CapacitySource.HOST  # a memory limit below the host's RAM
    memory_pressure: float | None = None  # the group's `some avg10` (percent), where the kernel
    # keeps it: it rises before available memory runs out


@dataclass(frozen=True, slots=True)
class Started:
    """Where a job now runs: its node and its main process there, and where this attempt's
    words begin in its log when the runner measured it before the process existed (None: the
    caller measures it before starting, see `Runner.measures_log_start`)."""

    node: str
    pid: int
    log_start: int | None = None


ExitCallback = Callable[[int, ExitStatus], None]
RestartCallback = Callable[[int, Started], None]


class Runner(abc.ABC):
    """Starts, signals and samples jobs; the scheduler's only way to touch a process.

    Nothing here assumes one machine: starting may take a round trip (a cluster scheduler), so
    it is awaited, and node figures come per node."""

    #: True when `start` reports `Started.log_start` (it opens the job's log itself): the caller
    #: then need not look the log up by name before each start.
    measures_log_start = False

    #: Set by the run's owner: `on_restart(job_id, started)` tells that a running job's process
    #: started over, on the node and with the pid of `started` (its node was lost and the
    #: cluster ran it again). A runner of one machine never calls it.
    on_restart: RestartCallback | None = None

    @abc.abstractmethod
    async def start(self, spec: JobSpec, on_exit: ExitCallback) -> Started:
        """Start `spec`; return once it runs, with its node and pid. `on_exit(job_id, status)`
        runs on the loop when it ends.

        Raises SpawnError when the command cannot be started at all."""

    @abc.abstractmethod
    def pause(self, job_id: int) -> None:
        """Stop every process of the job (SIGSTOP to its tree)."""

    @abc.abstractmethod
    def resume(self, job_id: int) -> None:
        """Continue every process of the job (SIGCONT to its tree)."""

    @abc.abstractmethod
    def terminate(self, job_id: int, grace: float) -> None:
        """SIGTERM the job's tree (and SIGCONT, so a paused job can act on it), SIGKILL after
        `grace` seconds if anything of it is still alive; a second call with less grace brings
        the SIGKILL forward, never back."""

    @abc.abstractmethod
    def sample(self) -> dict[int, ProcessSample]:
        """Figures for every running job, from one sweep."""

    @abc.abstractmethod
    def stats(self) -> dict[str, NodeStats]:
        """Every node's cores, CPU use, memory and output-filesystem space now, by node name."""

    @abc.abstractmethod
    def kill_all(self) -> None:
        """SIGKILL every job's tree at once (last resort on shutdown)."""

    async def open(self) -> None:
        """Reach the nodes before the first sweep (default: nothing; a cluster runner connects
        to its scheduler here). Raises OrchError with one line when they cannot be reached."""

    def set_requests(self, cpu_cores: float, memory_bytes: int) -> None:
        """What one job needs, from calibration and learning: a cluster packs jobs onto nodes
        by it (default: ignored; on one machine the limit alone decides)."""

    def close(self) -> None:
        """Release what the runner holds once the run is over (default: nothing)."""

    async def aclose(self) -> None:
        """`close`, for a runner that must talk to its nodes to let go (default: `close`)."""
        self.close()
