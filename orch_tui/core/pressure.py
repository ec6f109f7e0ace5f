"""The pressure guard: memory and disk headroom in, the scheduler's actions out.

Pure (no processes, no clock of its own, no events): the scheduler hands it the node's figures
and its active jobs on every sweep and carries out what it decides, so every rule is tested
with plain numbers. The rules:

- no launches while available memory or free disk is below its reserve;
- memory below half its reserve: pause the newest running job (SIGSTOP) rather than let the OOM
  killer choose, one per sweep, never the last one running;
- memory still critical after CRITICAL_PATIENCE seconds (pausing froze the growth but freed
  nothing), or below a quarter of its reserve (pausing cannot keep up): kill the youngest job
  (least work lost) to requeue it, or, when it is the only one, fail it: the orchestrator
  frees memory before the kernel's OOM killer has to; the patience counts again once the
  killed job has ended;
- memory back above its reserve: resume the oldest job paused for memory, once it fits again;
  with nothing running, resume it as soon as memory is no longer critical (holding every job
  is a deadlock);
- memory near its reserve (below NEAR_RESERVE times it, or the kernel says tasks stall on
  memory, NEAR_STALLS): sample faster, so growth of a few hundred MiB a second is caught
  between two sweeps;
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
#: Seconds memory may stay critical (pausing froze growth but freed nothing) before a job is killed.
CRITICAL_PATIENCE = 2.0
#: Below this many reserves of available memory, the guard asks for faster sampling.
NEAR_RESERVE = 2.0
#: Or when tasks of our cgroup waited for memory this share (percent) of the last 10 seconds.
NEAR_STALLS = 1.0


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """What the guard needs to know of a job holding a process."""

    job_id: int
    started: float
    peak_rss: int
    running: bool  # False: paused
    held_for_memory: bool = False  # paused by this guard, resumed by it alone
    ending: bool = False  # being stopped already (its memory is about to come back)


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
    requeue: int | None = None  # the youngest job: kill it, requeue it, lower the limit
    fail: int | None = None  # the only job left, and memory still critical: it fails


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
    near: bool = False  # memory near its reserve: sample faster
    _starved_since: float | None = None
    _critical_since: float | None = None

    def may_launch(self) -> bool:
        """True while every resource is above its reserve."""
        return all(level is PressureLevel.OK for level in self.levels.values())

    # One sweep's figures in, one local per decision.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments,too-many-locals
    def assess(self,
               now: float,
               available_memory: int,
               free_disk: int,
               active: Sequence[ActiveJob],
               queued: int,
               launching: bool,
               *,
               stalls: float | None = None) -> PressureActions:
        """One sweep's figures in, actions out. `launching` is False once the scheduler has
        stopped launching for another reason (then starvation is not this guard's to judge).
        `stalls` is the kernel's memory pressure (`some avg10`, percent) where it keeps one."""
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
        self.near = available_memory < NEAR_RESERVE * reserve or (stalls or 0.0) >= NEAR_STALLS
        pause = resume = requeue = fail = None
        if memory is PressureLevel.CRITICAL:
            pause, requeue, fail = self._critical(now, available_memory, active)
        else:
            self._critical_since = None
        held = [job for job in active if job.held_for_memory]
        if held and memory is not PressureLevel.CRITICAL:
            oldest = min(held, key=_age)
            # Every job held for memory: nothing runs to free any, holding them is a deadlock
            # (a job the operator paused is the operator's to continue).
            idle = len(held) == len(active)
            if idle or (memory is PressureLevel.OK
                        and available_memory - oldest.peak_rss > reserve):
                resume = oldest.job_id
        give_up = self._starving(now, memory is not PressureLevel.OK, disk is not PressureLevel.OK,
                                 bool(active), queued, launching)
        return PressureActions(changes, pause, resume, give_up, requeue, fail)

    def _critical(self, now: float, available_memory: int,
                  active: Sequence[ActiveJob]) -> tuple[int | None, int | None, int | None]:
        """(pause, requeue, fail) while memory is critical: pause the newest running job at
        once; once the patience has run out with nothing ending, kill the youngest."""
        live = [job for job in active if not job.ending]
        if self._critical_since is None or len(live) < len(active):
            self._critical_since = now  # the patience counts from when nothing is ending
        urgent = available_memory < self.memory_reserve // 4  # pausing cannot keep up
        if live and len(live) == len(active) and (urgent or now - self._critical_since
                                                  >= CRITICAL_PATIENCE):
            self._critical_since = now
            youngest = max(live, key=_age).job_id
            return (None, youngest, None) if len(live) > 1 else (None, None, youngest)
        running = [job for job in live if job.running]
        if len(running) > 1:
            return max(running, key=_age).job_id, None, None
        return None, None, None

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
