"""The pressure guard: memory and disk headroom in, the scheduler's actions out.

Pure (no processes, no clock of its own, no events): the scheduler hands it the node's figures
and its active jobs on every sweep and carries out what it decides, so every rule is tested
with plain numbers. The rules:

- no launches while available memory or free disk is below its reserve;
- memory below half its reserve: pause the newest running job (SIGSTOP) rather than let the OOM
  killer choose, one per sweep, never the last one running;
- memory back above its reserve: resume the oldest job paused for memory, once it fits again;
- nothing running and nothing allowed to start: wait DISK_PATIENCE / MEMORY_PATIENCE seconds for
  headroom to come back, then stop (the jobs left are reported as not run).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orch_tui.core.events import PressureLevel, Resource

#: Seconds to wait, with nothing of ours running, for memory or disk to come back before giving up
#: (disk rarely frees itself; memory held by other programs often does).
MEMORY_PATIENCE = 300.0
DISK_PATIENCE = 10.0


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """What the guard needs to know of a job holding a process."""

    job_id: int
    started: float
    peak_rss: int
    running: bool  # False: paused
    held_for_memory: bool = False  # paused by this guard, resumed by it alone


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A resource crossed a threshold: the scheduler publishes it."""

    resource: Resource
    level: PressureLevel
    available: int
    reserve: int


@dataclass(frozen=True, slots=True)
class PressureActions:
    """What one assessment asks of the scheduler."""

    changes: tuple[LevelChange, ...] = ()
    pause: int | None = None  # the newest running job, memory critically low
    resume: int | None = None  # the oldest job held for memory, headroom back
    give_up: str | None = None  # why nothing can ever start again (stop launching)


def _age(job: ActiveJob) -> tuple[float, int]:
    """Newer is started later; of jobs started in the same instant, the one taken later from
    the queue (the higher id)."""
    return job.started, job.job_id


@dataclass
class PressureGuard:
    """Levels per resource, the starvation timer, and the rules above."""

    memory_reserve: int = 0
    disk_reserve: int = 0
    levels: dict[Resource, PressureLevel] = field(
        default_factory=lambda: {resource: PressureLevel.OK
                                 for resource in Resource})
    _starved_since: float | None = None

    def may_launch(self) -> bool:
        """True while every resource is above its reserve."""
        return all(level is PressureLevel.OK for level in self.levels.values())

    # One sweep's figures in, one local per decision.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments,too-many-locals
    def assess(self, now: float, available_memory: int, free_disk: int, active: Sequence[ActiveJob],
               queued: int, launching: bool) -> PressureActions:
        """One sweep's figures in, actions out. `launching` is False once the scheduler has
        stopped launching for another reason (then starvation is not this guard's to judge)."""
        reserve = self.memory_reserve
        memory = PressureLevel.OK
        if available_memory < reserve // 2:
            memory = PressureLevel.CRITICAL
        elif available_memory < reserve:
            memory = PressureLevel.LOW
        disk = PressureLevel.LOW if free_disk < self.disk_reserve else PressureLevel.OK
        figures = (LevelChange(Resource.MEMORY, memory, available_memory, reserve),
                   LevelChange(Resource.DISK, disk, free_disk, self.disk_reserve))
        changes = tuple(figure for figure in figures
                        if self.levels[figure.resource] is not figure.level)
        for change in changes:
            self.levels[change.resource] = change.level
        pause = resume = None
        running = [job for job in active if job.running]
        if memory is PressureLevel.CRITICAL and len(running) > 1:
            pause = max(running, key=_age).job_id
        elif memory is PressureLevel.OK:
            held = [job for job in active if job.held_for_memory]
            if held:
                oldest = min(held, key=_age)
                if available_memory - oldest.peak_rss > reserve:
                    resume = oldest.job_id
        give_up = self._starving(now, memory is not PressureLevel.OK, disk is not PressureLevel.OK,
                                 bool(active), queued, launching)
        return PressureActions(changes, pause, resume, give_up)

    # The facts starvation is judged on.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments
    def _starving(self, now: float, memory_low: bool, disk_low: bool, busy: bool, queued: int,
                  launching: bool) -> str | None:
        if busy or not queued or not launching or not (memory_low or disk_low):
            self._starved_since = None
            return None
        if self._starved_since is None:
            self._starved_since = now
        patience = DISK_PATIENCE if disk_low else MEMORY_PATIENCE
        if now - self._starved_since < patience:
            return None
        what = "free disk" if disk_low else "available memory"
        return (f"{what} below its reserve and nothing running: stopping with {queued} jobs not "
                "run; free some and run the same command again")
