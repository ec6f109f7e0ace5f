"""How many jobs may run at once: the seed's three-constraint rule, made exact.

Each of CPU, memory and disk allows ``floor(fraction * system / per_process)`` parallel jobs; the
smallest wins, then the optional caps (``max_processes``, number of jobs) apply, and the result is
never below 1 so a job bigger than the machine still runs (alone). The arithmetic uses exact
fractions of the *decimal* values (``Fraction(repr(x))``): ``0.8 * 32 / 1`` must give 25, and
``0.8 * 100 GB / 1 GB`` must give 80, not the 79 that binary floating point would give.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from orch_tui.core.config import ResourcesConfig
from orch_tui.core.textutil import format_bytes

NEAR_ZERO_CPU = 0.02  # cores: below this a job is idle as far as scheduling cares
NEAR_ZERO_RSS = 1024 * 1024  # bytes (1 MiB)
NEAR_ZERO_OUTPUT = 64 * 1024  # bytes (64 KiB)

#: Why a limit is 1 when a constraint allows less: a job bigger than the machine still runs.
FLOOR_NOTE = "at least 1 job always runs"

_NEAR_ZERO = {"cpu": NEAR_ZERO_CPU, "memory": NEAR_ZERO_RSS, "disk": NEAR_ZERO_OUTPUT}

# Order used to break ties: the first name in this tuple wins when two allow the same limit.
BINDING_ORDER = ("cpu", "memory", "disk", "max_processes", "jobs")


class CapacitySource(enum.Enum):
    """Whose figure a capacity is: the host's, or the tighter limit of our cgroup."""

    HOST = "host"
    CGROUP = "cgroup limit"

    @property
    def note(self) -> str:
        """What follows a figure when it is not the host's: `` (cgroup limit)``."""
        return "" if self is CapacitySource.HOST else f" ({self.value})"


@dataclass(frozen=True)
class ProcessProfile:
    """What one job costs: the per-process figures the scaling rule divides by."""

    cpu_cores: float  # cores one job uses (1.0 == one full core)
    rss_bytes: int  # peak RSS of one job's process tree
    output_bytes: int  # expected output size of one job
    source: str = "calibration"  # "calibration", "whole-life", "learned", "journal"


@dataclass(frozen=True)
class SystemCapacity:
    """What the machine offers right now."""

    logical_cores: int
    available_memory: int  # bytes
    free_disk: int  # bytes free on the output filesystem
    cores_source: CapacitySource = CapacitySource.HOST
    memory_source: CapacitySource = CapacitySource.HOST


@dataclass(frozen=True)
class Constraint:
    """One of the three limits, kept whole so the UI can show why the limit is what it is."""

    name: str  # "cpu", "memory", "disk"
    per_process: float  # cores / bytes / bytes
    system: float  # logical cores / available memory / free disk
    fraction: float
    allowed: int | None  # floor(fraction * system / per_process); None when per_process ~0
    source: CapacitySource = CapacitySource.HOST  # whose `system` figure it is

    @property
    def binds(self) -> bool:
        """False when the job's figure is too small for this resource to limit anything."""
        return self.allowed is not None

    @property
    def raw(self) -> float | None:
        """``fraction * system / per_process`` before the floor (None when it does not bind):
        a job bigger than the machine allows 0.6 jobs, which says more than the floor's 0."""
        if self.allowed is None:
            return None
        if math.isinf(self.per_process) or self.per_process <= 0:
            return 0.0
        return self.fraction * max(self.system, 0) / self.per_process

    @property
    def below_one(self) -> bool:
        """True when this constraint alone allows no job: the limit is 1 all the same."""
        return self.allowed == 0

    def formula(self) -> str:
        """The rule's arithmetic in words, and why the limit is never 0 when it allows none:
        ``memory: 0.8 × 1.46 GiB / 1.90 GiB per job = 0.61 -> at least 1 job always runs``."""
        if self.name == "cpu":
            system, per = f"{self.system:g} cores", f"{self.per_process:.2f} cores"
        else:
            system, per = format_bytes(self.system), format_bytes(self.per_process)
        text = f"{self.name}: {self.fraction:g} × {system}{self.source.note} / {per} per job"
        if self.allowed is None:
            return f"{text}: too small to limit anything"
        if self.below_one:
            return f"{text} = {self.raw:.2g} -> {FLOOR_NOTE}"
        return f"{text} = {self.raw:.2f} -> {self.allowed}"

    def describe(self) -> str:
        """``"25 by cpu"``, or ``"no limit by disk"`` when it does not bind."""
        if self.allowed is None:
            return f"no limit by {self.name}"
        if self.below_one:
            return f"{self.raw:.2g} by {self.name}"
        return f"{self.allowed} by {self.name}"


@dataclass(frozen=True)
class ScalingDecision:
    """The limit plus every figure that produced it."""

    cpu: Constraint
    memory: Constraint
    disk: Constraint
    limit: int  # >= 1, <= max_processes and <= jobs when given
    binding: str  # "cpu" | "memory" | "disk" | "max_processes" | "jobs" | "none"

    @property
    def constraints(self) -> tuple[Constraint, Constraint, Constraint]:
        """The three resource constraints in tie-break order."""
        return (self.cpu, self.memory, self.disk)

    def describe(self) -> str:
        """One line for logs and the TUI, e.g. ``limit 25 (cpu binds: 25 by cpu, ...)``."""
        parts = ", ".join(c.describe() for c in self.constraints)
        if self.binding == "none":
            head = "nothing binds, one job per logical core"
        else:
            head = f"{self.binding} binds"
        floor_note = ""
        if self.binding in _NEAR_ZERO and getattr(self, self.binding).allowed == 0:
            floor_note = ", raised to the minimum of 1"
        return f"limit {self.limit} ({head}{floor_note}: {parts})"


def _exact(value: float | int) -> Fraction:
    """The decimal the value was written as, so 0.8 means 4/5 and not 0.8000000000000000444."""
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(repr(float(value)))


def _check_fraction(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")


def _constraint(name: str,
                per_process: float,
                system: float,
                fraction: float,
                source: CapacitySource = CapacitySource.HOST) -> Constraint:
    if math.isnan(per_process) or per_process < 0:
        raise ValueError(f"{name} per-process figure must be >= 0, got {per_process!r}")
    if math.isnan(system):
        raise ValueError(f"{name} system figure must be a number, got {system!r}")
    if per_process < _NEAR_ZERO[name] or math.isinf(system):
        allowed = None
    elif math.isinf(per_process):
        allowed = 0
    else:
        budget = _exact(fraction) * _exact(max(system, 0))
        allowed = math.floor(budget / _exact(per_process))
    return Constraint(name=name,
                      per_process=per_process,
                      system=system,
                      fraction=fraction,
                      allowed=allowed,
                      source=source)


# pylint: disable-next=too-many-arguments  # the rule's inputs: config fractions, keyword-only
def compute_limit(profile: ProcessProfile,
                  capacity: SystemCapacity,
                  *,
                  cpu_fraction: float = ResourcesConfig.cpu_fraction,
                  memory_fraction: float = ResourcesConfig.memory_fraction,
                  disk_fraction: float = ResourcesConfig.disk_fraction,
                  max_processes: int | None = ResourcesConfig.max_processes,
                  jobs: int | None = None) -> ScalingDecision:
    """Apply the seed's rule: the smallest of the three constraints, capped, at least 1.

    The fractions and `max_processes` default to the config's own defaults (`ResourcesConfig`).

    Ties go to cpu, then memory, then disk, then max_processes, then jobs; a cap only binds when
    it is strictly lower than every binding constraint. When no constraint binds (the job is
    near-idle on all three) the fallback is one job per logical core, binding "none", still
    subject to the caps: a cap can only ever lower the limit. Caps below 1 count as 1 (the limit
    is never 0). Raises ValueError for fractions outside (0, 1] or negative/NaN figures.
    """
    _check_fraction("cpu_fraction", cpu_fraction)
    _check_fraction("memory_fraction", memory_fraction)
    _check_fraction("disk_fraction", disk_fraction)
    cpu = _constraint("cpu", profile.cpu_cores, capacity.logical_cores, cpu_fraction,
                      capacity.cores_source)
    memory = _constraint("memory", profile.rss_bytes, capacity.available_memory, memory_fraction,
                         capacity.memory_source)
    disk = _constraint("disk", profile.output_bytes, capacity.free_disk, disk_fraction)

    candidates: list[tuple[int, str]] = [(c.allowed, c.name) for c in (cpu, memory, disk)
                                         if c.allowed is not None]
    if not candidates:
        candidates.append((max(1, capacity.logical_cores), "none"))
    if max_processes is not None:
        candidates.append((max(1, max_processes), "max_processes"))
    if jobs is not None:
        candidates.append((max(1, jobs), "jobs"))
    # min() keeps the first of equal values, and candidates are built in tie-break order.
    allowed, binding = min(candidates, key=lambda item: item[0])
    return ScalingDecision(cpu=cpu,
                           memory=memory,
                           disk=disk,
                           limit=max(1, allowed),
                           binding=binding)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: always one of the observed values, never an interpolation.

    A learned profile must describe a job that really happened, so q=90 over 10 values is the
    9th smallest. Raises ValueError on an empty sequence or q outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if math.isnan(q) or not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q!r}")
    ordered = sorted(values)
    rank = math.ceil(_exact(q) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


def learn_profile(peaks_rss: Sequence[int],
                  cpu_cores: Sequence[float],
                  output_bytes: Sequence[float],
                  *,
                  q: float = 90) -> ProcessProfile:
    """A profile from finished jobs: the q-th percentile of each figure, taken independently.

    Taking each figure separately is deliberately pessimistic (the heaviest jobs for memory need
    not be the heaviest for disk); that errs toward fewer parallel jobs, which is the safe side.
    Raises ValueError when any sequence is empty: no data is not the same as zero cost.
    """
    named = {"peaks_rss": peaks_rss, "cpu_cores": cpu_cores, "output_bytes": output_bytes}
    for name, values in named.items():
        if not values:
            raise ValueError(f"learn_profile needs at least one value in {name}")
    return ProcessProfile(cpu_cores=float(percentile(cpu_cores, q)),
                          rss_bytes=int(percentile(peaks_rss, q)),
                          output_bytes=int(percentile(output_bytes, q)),
                          source="learned")
