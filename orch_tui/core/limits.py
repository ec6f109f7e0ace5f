"""The limit policy: how many jobs may run at once, and why (pure: no I/O, no clock, no loop).

One owner for the limit and its source. It starts from `--jobs/--max-procs` (a fixed count,
never recalculated), a previous run's profile, or the calibration job; it relearns from every
finished job (the 90th percentile of their figures, `ProfileLearner`) unless the operator set a
limit, which then wins for the rest of the run. Every change comes back as the `LimitChanged`
event the scheduler publishes, so the rule is tested with plain numbers. The arithmetic itself
is `scaling.compute_limit`, the three-constraint contract, unchanged.

`--adaptive` (`AdaptiveLimit`) adds to it: while cpu binds, one job more is tried and kept only
when the measured rate of work rises by `ADAPTIVE_GAIN`, and a kept one is followed at once by the
next try; memory, disk and max_processes still cap it, and memory or disk pressure takes every
extra job away.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

from orch_tui.core import events as ev
from orch_tui.core.calibration import ProfileLearner
from orch_tui.core.config import MAX_JOBS, ResourcesConfig
from orch_tui.core.events import AdaptivePhase, AdaptiveStep, LimitSource
from orch_tui.core.runner import NodeStats
from orch_tui.core.scaling import (CapacitySource, ProcessProfile, ScalingDecision, SystemCapacity,
                                   compute_limit)


def cluster(nodes: Mapping[str, NodeStats]) -> NodeStats:
    """Every node as one: cores and memory add up; the output filesystem is shared, so its free
    space counts once (the least any node reports). One node is itself."""
    if len(nodes) == 1:
        return next(iter(nodes.values()))
    figures = list(nodes.values())
    cores = sum(n.logical_cores for n in figures)
    return NodeStats(node="+".join(sorted(nodes)),
                     logical_cores=cores,
                     cpu_percent=sum(n.cpu_percent * n.logical_cores
                                     for n in figures) / max(1, cores),
                     total_memory=sum(n.total_memory for n in figures),
                     available_memory=sum(n.available_memory for n in figures),
                     free_disk=min((n.free_disk for n in figures), default=0),
                     disk_total=min((n.disk_total for n in figures), default=0),
                     cores_source=_source(n.cores_source for n in figures),
                     memory_source=_source(n.memory_source for n in figures))


def _source(sources: Iterable[CapacitySource]) -> CapacitySource:
    """A sum is a cgroup's figure as soon as one of its terms is."""
    return max(sources, key=lambda source: source is CapacitySource.CGROUP)


def capacity(total: NodeStats, ours_rss: int, ours_disk: int) -> SystemCapacity:
    """What the nodes offer as if none of our jobs were running: their memory and partial
    outputs count as available, because the rule divides it among them."""
    return SystemCapacity(logical_cores=total.logical_cores,
                          available_memory=total.available_memory + ours_rss,
                          free_disk=total.free_disk + ours_disk,
                          cores_source=total.cores_source,
                          memory_source=total.memory_source)


#: The least rise in the rate of work that keeps one job more: 5%. Two windows of the same length
#: at the same concurrency differ by a few percent on their own (a job ending inside one, the
#: probes' steps, a shared machine); below 5% a gain is as likely noise, and a job more costs
#: memory and every job's latency for nothing.
ADAPTIVE_GAIN = 0.05
#: A measuring window, in stabilization windows: several ffmpeg ramp-ups long, so that one job's
#: start or end weighs little in it.
ADAPTIVE_WINDOWS = 3
#: After a step back, no new try for this many measuring windows: the answer would be the same.
ADAPTIVE_BACKOFF = 10


def ceiling(decision: ScalingDecision, max_processes: int | None, jobs: int | None) -> int | None:
    """The most jobs the rule's other limits allow: memory, disk, max_processes and the jobs
    there are (None: nothing caps it). An adaptive limit never goes beyond it."""
    caps = [c.allowed for c in (decision.memory, decision.disk) if c.allowed is not None]
    caps += [cap for cap in (max_processes, jobs) if cap is not None]
    return max(1, min(caps)) if caps else None


# pylint: disable-next=too-many-instance-attributes  # one measurement's state, field by field
class AdaptiveLimit:
    """Jobs above the cpu rule's limit, found by measuring (pure: the caller gives the time
    and the work done so far, the ETA's measure: input bytes weighted by progress).

    A window's rate is compared only with one of the same length at the previous concurrency,
    both started `settle` seconds after the limit was reached, so a new job's ramp-up (ffmpeg's
    probing and lookahead fill) is not counted against it."""

    def __init__(self, settle: float, *, gain: float = ADAPTIVE_GAIN) -> None:
        self.settle, self.gain = settle, gain
        self.length = max(1.0, ADAPTIVE_WINDOWS * settle)  # seconds of one measuring window
        self.extra = 0  # jobs above the cpu rule, kept or being tried
        self.trying = False
        self.baseline: float | None = None  # work per second at the limit before the try
        self.retry_at = -math.inf
        self._steady_from: float | None = None
        self._window: tuple[float, float] | None = None  # (start, work done then)
        self._seeded = False  # a baseline from calibration: try one job more at once
        self._kept = False  # a try was just kept: its window is the next try's baseline

    def seed(self, rate: float) -> None:
        """The calibration job's rate of work, measured while it ran alone: the baseline at a
        cpu rule of one job, so the first try starts at once instead of after a window of one
        job (which, on a small machine, is most of a short batch: 6 clips of 30 s take 50 s)."""
        if rate > 0 and not self.extra:
            self.baseline, self._seeded = rate, True

    def restart(self, now: float, *, back_off: bool = False) -> None:
        """Drop every extra job and measurement (the rule's limit changed, or pressure)."""
        self.extra, self.trying, self.baseline = 0, False, None
        self._seeded = self._kept = False
        self._steady_from = self._window = None
        if back_off:
            self.retry_at = now + ADAPTIVE_BACKOFF * self.length

    def _measure(self, now: float, work_done: float, running: int, limit: int) -> float | None:
        """The rate over a full window at a steady `limit` jobs (None until there is one)."""
        if running < limit:  # launching, or the queue ran dry: not this concurrency's rate
            self._steady_from = self._window = None
            return None
        if self._steady_from is None:
            self._steady_from = now
        if now - self._steady_from < self.settle:
            return None
        if self._window is None:
            self._window = (now, work_done)
            return None
        start, done = self._window
        if now - start < self.length:
            return None
        self._window = (now, work_done)
        return (work_done - done) / (now - start)

    # The figures of one sweep, all plain numbers.
    # pylint: disable-next=too-many-arguments
    def step(self, now: float, work_done: float, *, running: int, rule: ScalingDecision,
             room: int | None, pressure: bool) -> AdaptiveStep | None:
        """What to do at `now`: try one job more, keep it, step back, or nothing (None).
        `room` is the ceiling of the other limits; `pressure` memory or disk pressure."""
        if pressure or rule.binding != "cpu":
            return self._without_extra(now, rule)
        if (self._seeded or self._kept) and self._at_once(now, rule, room):
            return self._try(rule)
        rate = self._measure(now, work_done, running, rule.limit + self.extra)
        if rate is None:
            return None
        if self.trying:
            return self._judge(now, rate, rule)
        self.baseline = rate
        if now < self.retry_at or rate <= 0 or not self._fits(rule, room):
            return None
        return self._try(rule)

    def _at_once(self, now: float, rule: ScalingDecision, room: int | None) -> bool:
        """Whether to try one job more now, without a baseline window first: calibration's
        rate is the one-job baseline (a cpu rule of one job, none above it yet), and a kept
        try's window was measured at today's concurrency, just what a baseline window would
        measure next (waiting for one spent a whole window one job short of a better limit)."""
        seeded, self._seeded, self._kept = self._seeded, False, False
        if seeded:
            return rule.limit == 1 and not self.extra and self._fits(rule, room)
        return now >= self.retry_at and self._fits(rule, room)

    def _fits(self, rule: ScalingDecision, room: int | None) -> bool:
        return room is None or rule.limit + self.extra + 1 <= room

    def _try(self, rule: ScalingDecision) -> AdaptiveStep:
        """One job more, measured from when it has settled."""
        self.extra += 1
        self.trying = True
        self._steady_from = self._window = None
        return AdaptiveStep(AdaptivePhase.TRYING, rule.limit, self.extra)

    def _without_extra(self, now: float, rule: ScalingDecision) -> AdaptiveStep | None:
        """Pressure, or something other than cpu binds: the rule's limit alone, and a pause
        before trying again when jobs above it were taken away."""
        if not self.extra:
            self.restart(now)
            return None
        self.restart(now, back_off=True)
        return AdaptiveStep(AdaptivePhase.PRESSURE, rule.limit, 0)

    def _judge(self, now: float, rate: float, rule: ScalingDecision) -> AdaptiveStep:
        """The try's window is measured: keep the job more, or step back and back off."""
        self.trying = False
        gain = rate / self.baseline - 1 if self.baseline else math.inf
        if gain >= self.gain:
            self.baseline, self._kept = rate, True
            return AdaptiveStep(AdaptivePhase.KEPT, rule.limit, self.extra, gain)
        self.extra -= 1
        self.baseline, self.retry_at = None, now + ADAPTIVE_BACKOFF * self.length
        self._steady_from = self._window = None
        return AdaptiveStep(AdaptivePhase.STEPPED_BACK, rule.limit, self.extra, gain)


# pylint: disable-next=too-many-instance-attributes  # the limit, its source and the figures behind it
class LimitPolicy:
    """The current limit, the decision behind it, and the rules that change it."""

    def __init__(self,
                 resources: ResourcesConfig,
                 *,
                 fixed: int | None = None,
                 adaptive: bool = False) -> None:
        self._resources = resources
        self.adaptive = AdaptiveLimit(resources.stabilization_seconds) if adaptive else None
        self.fixed = fixed  # --jobs / --max-procs: no calibration, no learning
        self.manual = fixed is not None  # the operator's word wins over learning
        self.limit = 0  # set by calibration, a previous profile or `fixed` before any launch
        self.decision: ScalingDecision | None = None
        self.learner = ProfileLearner()
        self.runnable: int | None = None  # the "jobs" cap: never more slots than jobs
        self.pressure_rss = 0  # the most a job reached before it was requeued for memory

    def decide(self, profile: ProcessProfile, system: SystemCapacity) -> ScalingDecision:
        """The scaling rule with this run's fractions and caps."""
        res = self._resources
        return compute_limit(profile,
                             system,
                             cpu_fraction=res.cpu_fraction,
                             memory_fraction=res.memory_fraction,
                             disk_fraction=res.disk_fraction,
                             max_processes=res.max_processes,
                             jobs=self.runnable)

    def set(self,
            now: float,
            limit: int,
            source: LimitSource,
            decision: ScalingDecision | None = None,
            observations: int = 0) -> ev.LimitChanged | None:
        """Take `limit` (at least 1); the event to publish, or None when nothing changed."""
        limit = max(1, limit)
        previous, self.limit = self.limit, limit
        if decision is not None:
            self.decision = decision
        if limit == previous and decision is None:
            return None
        return ev.LimitChanged(time=now,
                               limit=limit,
                               previous=previous,
                               source=source,
                               decision=decision,
                               observations=observations)

    def start_fixed(self, now: float) -> ev.LimitChanged | None:
        """The `--jobs` count, when one was given (None otherwise, or when unchanged)."""
        assert self.fixed is not None
        return self.set(now, self.fixed, LimitSource.MAX_PROCS)

    def calibrated(self, now: float, profile: ProcessProfile, ratio: float, system: SystemCapacity,
                   source: LimitSource) -> tuple[ScalingDecision, ev.LimitChanged | None]:
        """Start from measured (or previously learned) figures: they seed the learner, so one
        odd job cannot swing the limit alone. A window's output ratio is extrapolated from a job
        still running: the first real one replaces it. A limit the operator set while it was
        measured stays: the decision is told, with the operator's limit."""
        self.learner.seed(profile, ratio, measured=source is not LimitSource.WINDOW)
        decision = self.decide(profile, system)
        if self.manual:
            return decision, self.set(now, self.limit, LimitSource.OPERATOR, decision)
        return decision, self.set(now, decision.limit, source, decision)

    def calibration_rate(self, rate: float) -> None:
        """The rate of work of the calibration job alone: with a cpu rule of one job, the
        adaptive limit's baseline (its first try then starts at once)."""
        if self.adaptive is not None and self.decision is not None and self.decision.limit == 1:
            self.adaptive.seed(rate)

    def operator(self, now: float, limit: int) -> ev.LimitChanged | None:
        """The operator's limit: it wins over learning from now on (at most MAX_JOBS, however
        often `+` is pressed)."""
        self.manual = True
        return self.set(now, min(limit, MAX_JOBS), LimitSource.OPERATOR)

    # The figures of one finished job and the node.
    # pylint: disable-next=too-many-arguments,too-many-positional-arguments
    def learn(self, now: float, cpu_cores: float, peak_rss: int, output_ratio: float | None,
              typical_input: int, system: SystemCapacity) -> ev.LimitChanged | None:
        """Record one finished job and re-derive the limit from every finished job's figures
        (unless the operator or `--jobs` set it, or nothing was calibrated yet)."""
        self.learner.add(cpu_cores, peak_rss, output_ratio)
        if self.manual or self.decision is None:
            return None
        profile = self._at_least_pressure(self.learner.profile(typical_input))
        if profile is None:
            return None
        decision = self.decide(profile, system)
        extra = self.adaptive.extra if self.adaptive is not None else 0
        if decision.limit == self.limit - extra and (not extra or decision.binding == "cpu"):
            self.decision = decision
            return None
        if self.adaptive is not None:
            self.adaptive.restart(now)
        return self.set(now, decision.limit, LimitSource.LEARNED, decision,
                        self.learner.observations)

    def _at_least_pressure(self, profile: ProcessProfile | None) -> ProcessProfile | None:
        """A job's memory is never less than what a job requeued for memory reached: learning
        from the jobs that fit must not raise the limit back into the same shortage."""
        if profile is None or profile.rss_bytes >= self.pressure_rss:
            return profile
        return dataclasses.replace(profile, rss_bytes=self.pressure_rss)

    def memory_pressure(self, now: float, peak_rss: int, typical_input: int,
                        system: SystemCapacity) -> ev.LimitChanged | None:
        """A job was killed and requeued because memory stayed critical: one job fewer at
        least, and no more than the rule allows with the memory it reached per job. This
        lowers an operator's or `--jobs` limit too: the alternative is the OOM killer."""
        self.pressure_rss = max(self.pressure_rss, peak_rss)
        if self.adaptive is not None:
            self.adaptive.restart(now, back_off=True)
        limit = self.limit - 1
        profile = self._at_least_pressure(self.learner.profile(typical_input))
        decision = None
        if profile is not None:
            decision = self.decide(profile, system)
            if decision.limit < limit:
                limit = decision.limit
            else:
                decision = None
        return self.set(now, limit, LimitSource.MEMORY_PRESSURE, decision)

    def adapt(self, now: float, work_done: float, running: int, queued: int,
              pressure: bool) -> ev.LimitChanged | None:
        """`--adaptive`: one sweep's step (see `AdaptiveLimit`); never with an operator's or
        `--jobs` limit, nor before calibration, nor with nothing left to launch."""
        adaptive, decision = self.adaptive, self.decision
        if adaptive is None or self.manual or decision is None or (not queued
                                                                   and not adaptive.extra):
            return None
        room = ceiling(decision, self._resources.max_processes, self.runnable)
        step = adaptive.step(now,
                             work_done,
                             running=running,
                             rule=decision,
                             room=room,
                             pressure=pressure)
        if step is None:
            return None
        previous, self.limit = self.limit, decision.limit + step.extra
        return ev.LimitChanged(time=now,
                               limit=self.limit,
                               previous=previous,
                               source=LimitSource.ADAPTIVE,
                               adaptive=step)

    def output_ratio(self) -> float:
        """The learned output/input size ratio (1.0 until something was measured)."""
        return self.learner.ratio()
