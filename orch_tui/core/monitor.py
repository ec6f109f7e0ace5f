"""Watching the running jobs and the nodes: one sweep turns samples into events and the pressure
guard's verdict.

The monitor reads figures through the runner and publishes them; it never acts on a job. What the
guard decides (pause the newest, resume the oldest, stop launching) goes back to the scheduler,
which owns every job's state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from orch_tui.core import events as ev
from orch_tui.core.calibration import CalibrationMeter, expected_output
from orch_tui.core.clock import Clock
from orch_tui.core.config import ResourcesConfig
from orch_tui.core.events import JobState, NoticeLevel, PauseReason
from orch_tui.core.job import Job
from orch_tui.core.limits import cluster
from orch_tui.core.pressure import ActiveJob, PressureActions, PressureGuard
from orch_tui.core.probes import generic
from orch_tui.core.runner import NodeStats, ProcessSample, Runner

#: Calibration samples at least this often, whatever the configured sample interval.
CALIBRATION_INTERVAL = 0.25


def projected_disk_use(ratio: float, queued_bytes: int, active: Sequence[Job]) -> int:
    """Bytes the outputs still to be written will take: each queued input's own size at the
    learned output/input `ratio` (their sum times the ratio: the queue keeps the sum), and each
    running job's remainder, from its own media progress when ffmpeg tells it."""
    total = int(ratio * queued_bytes)
    for job in active:
        last = job.last
        written = last.output_bytes if last else 0
        expected = expected_output(written, last.progress if last else None,
                                   int(ratio * job.spec.input_size))
        total += max(0, expected - written)
    return total


# The sampler's state: runner, clock, guard, meters, node figures.
# pylint: disable-next=too-many-instance-attributes
class Monitor:
    """Samples, node figures and the pressure guard, for the scheduler."""

    def __init__(self, runner: Runner, bus: ev.EventBus, clock: Clock,
                 resources: ResourcesConfig) -> None:
        self._runner = runner
        self._bus = bus
        self._clock = clock
        self._resources = resources
        self.guard = PressureGuard()
        self.nodes: dict[str, NodeStats] = {}
        self.calibrating: tuple[int, CalibrationMeter] | None = None
        self._failed = False

    def prepare(self) -> NodeStats:
        """Read the nodes once and set the reserves the guard keeps free."""
        self.nodes = self._runner.stats()
        total = cluster(self.nodes)
        res = self._resources
        self.guard.memory_reserve = int((1 - res.memory_fraction) * total.total_memory)
        self.guard.disk_reserve = int((1 - res.disk_fraction) * total.free_disk)
        return total

    async def run(self, sweep: Callable[[], None]) -> None:
        """Call `sweep` every sample interval (faster while calibrating or while memory is near
        its reserve), for ever."""
        interval = self._resources.sample_interval
        while True:
            fast = self.calibrating is not None or self.guard.near
            await self._clock.sleep(min(interval, CALIBRATION_INTERVAL) if fast else interval)
            try:
                sweep()
            except OSError as exc:
                # Out of descriptors (thousands of jobs at `ulimit -n`): the run goes on
                # unmeasured for a moment rather than stopping; said once.
                if not self._failed:
                    self._failed = True
                    self._bus.publish(
                        ev.Notice(time=self._clock.now(),
                                  level=NoticeLevel.WARNING,
                                  message=f"cannot sample the jobs: {exc.strerror or exc}"))

    # pylint: disable-next=too-many-locals  # one local per figure of a sweep
    def sweep(self, jobs: Mapping[int, Job], active: Sequence[Job], queued: int, launching: bool,
              disk_use: int) -> PressureActions:
        """Sample every running job and every node once; the guard's actions."""
        now = self._clock.now()
        samples = self._runner.sample()
        self.nodes = self._runner.stats()
        for job_id, sample in samples.items():
            job = jobs.get(job_id)
            if job is not None and job.state.active:
                self._record(job, sample, now)
        guard = self.guard
        for stats in self.nodes.values():
            self._bus.publish(
                ev.SystemSample(time=now,
                                node=stats.node,
                                logical_cores=stats.logical_cores,
                                cpu_percent=stats.cpu_percent,
                                total_memory=stats.total_memory,
                                available_memory=stats.available_memory,
                                memory_reserve=guard.memory_reserve,
                                free_disk=stats.free_disk,
                                disk_total=stats.disk_total,
                                disk_reserve=guard.disk_reserve,
                                projected_disk_use=disk_use,
                                cores_source=stats.cores_source,
                                memory_source=stats.memory_source))
        total = cluster(self.nodes)
        held = [
            ActiveJob(job.spec.job_id, job.started or 0.0, job.peak_rss, job.state
                      is JobState.RUNNING, job.paused_by is PauseReason.MEMORY, job.stop
                      is not None) for job in active
        ]
        actions = guard.assess(now,
                               total.available_memory,
                               total.free_disk,
                               held,
                               queued,
                               launching,
                               stalls=total.memory_pressure)
        for change in actions.changes:
            self._bus.publish(
                ev.ResourcePressure(time=now,
                                    resource=change.resource,
                                    level=change.level,
                                    available=change.available,
                                    reserve=change.reserve))
        return actions

    def _record(self, job: Job, sample: ProcessSample, now: float) -> None:
        job.last = sample
        job.node = sample.node  # a cluster runs a job again elsewhere when its node is lost
        job.peak_rss = max(job.peak_rss, sample.rss_bytes)
        size = job.spec.input_size
        fraction = None
        if sample.read_offset is not None and size > 0:
            fraction = min(1.0, sample.read_offset / size)
        elapsed = now - (job.started or now)
        # ffmpeg's own figures when the job is ffmpeg (even when they cannot tell: never a
        # guess from the read offset, which runs ahead of it); the read offset otherwise.
        progress = sample.progress if sample.progress is not None else generic(
            sample.read_offset, size)
        self._bus.publish(
            ev.JobSample(time=now,
                         job_id=job.spec.job_id,
                         node=sample.node,
                         pid=sample.pid,
                         cpu_cores=sample.cpu_cores,
                         rss_bytes=sample.rss_bytes,
                         processes=sample.processes,
                         read_fraction=fraction,
                         output_bytes=sample.output_bytes,
                         elapsed=elapsed,
                         progress=progress.fraction,
                         fps=progress.fps,
                         speed=progress.speed,
                         eta_seconds=progress.eta_seconds,
                         progress_source=progress.source))
        if self.calibrating is not None and self.calibrating[0] == job.spec.job_id:
            meter = self.calibrating[1]
            meter.add(sample.cpu_cores, sample.rss_bytes, sample.output_bytes, sample.read_offset,
                      progress)
            self._bus.publish(
                ev.CalibrationProgress(time=now,
                                       job_id=job.spec.job_id,
                                       elapsed=elapsed,
                                       window=self._resources.stabilization_seconds,
                                       cpu_cores=sample.cpu_cores,
                                       rss_bytes=sample.rss_bytes,
                                       output_bytes=sample.output_bytes,
                                       read_fraction=fraction,
                                       output_estimate=meter.output_estimate(),
                                       output_basis=meter.output_basis()))
