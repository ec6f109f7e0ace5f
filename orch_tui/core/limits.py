"""The limit policy: how many jobs may run at once, and why (pure: no I/O, no clock, no loop).

One owner for the limit and its source. It starts from `--jobs/--max-procs` (a fixed count,
never recalculated), a previous run's profile, or the calibration job; it relearns from every
finished job (the 90th percentile of their figures, `ProfileLearner`) unless the operator set a
limit, which then wins for the rest of the run. Every change comes back as the `LimitChanged`
event the scheduler publishes, so the rule is tested with plain numbers. The arithmetic itself
is `scaling.compute_limit`, the three-constraint contract, unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from orch_tui.core import events as ev
from orch_tui.core.calibration import ProfileLearner
from orch_tui.core.config import ResourcesConfig
from orch_tui.core.events import LimitSource
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


# pylint: disable-next=too-many-instance-attributes  # the limit, its source and the figures behind it
class LimitPolicy:
    """The current limit, the decision behind it, and the rules that change it."""

    def __init__(self, resources: ResourcesConfig, *, fixed: int | None = None) -> None:
        self._resources = resources
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
        still running: the first real one replaces it."""
        self.learner.seed(profile, ratio, measured=source is not LimitSource.WINDOW)
        decision = self.decide(profile, system)
        return decision, self.set(now, decision.limit, source, decision)

    def operator(self, now: float, limit: int) -> ev.LimitChanged | None:
        """The operator's limit: it wins over learning from now on."""
        self.manual = True
        return self.set(now, limit, LimitSource.OPERATOR)

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
        if decision.limit == self.limit:
            self.decision = decision
            return None
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

    def output_ratio(self) -> float:
        """The learned output/input size ratio (1.0 until something was measured)."""
        return self.learner.ratio()
