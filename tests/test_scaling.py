"""The seed's three-constraint scaling rule, its worked examples and its edge cases."""

from __future__ import annotations

import pytest

from orch_tui.core.scaling import (NEAR_ZERO_CPU, NEAR_ZERO_OUTPUT, NEAR_ZERO_RSS, Constraint,
                                   ProcessProfile, SystemCapacity, compute_limit, learn_profile,
                                   percentile)

GB = 1024**3
GB_DECIMAL = 10**9
MB = 1024**2

# The seed's machine: 32 cores, 32 GB available, 100 GB free; each job 1 core, 1 GB, 1 GB out.
SEED_CAPACITY = SystemCapacity(logical_cores=32, available_memory=32 * GB, free_disk=100 * GB)
SEED_PROFILE = ProcessProfile(cpu_cores=1.0, rss_bytes=GB, output_bytes=GB)
TINY = ProcessProfile(cpu_cores=0.0, rss_bytes=0, output_bytes=0)
HUGE = SystemCapacity(logical_cores=1000, available_memory=1000 * GB, free_disk=1000 * GB)


def test_seed_cpu_example() -> None:
    """32 cores, 1 core per process -> 25 (floor of 25.6)."""
    profile = ProcessProfile(cpu_cores=1.0, rss_bytes=0, output_bytes=0)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert decision.cpu.allowed == 25
    assert (decision.limit, decision.binding) == (25, "cpu")


def test_seed_memory_example() -> None:
    """32 GB available, 1 GB per process -> 25."""
    profile = ProcessProfile(cpu_cores=0.0, rss_bytes=GB, output_bytes=0)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert decision.memory.allowed == 25
    assert (decision.limit, decision.binding) == (25, "memory")


def test_seed_disk_example() -> None:
    """100 GB free, 1 GB outputs -> 80 exactly: 0.8 * 100 / 1 is 79.999... in binary floats."""
    profile = ProcessProfile(cpu_cores=0.0, rss_bytes=0, output_bytes=GB)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert decision.disk.allowed == 80
    assert (decision.limit, decision.binding) == (80, "disk")
    decimal = compute_limit(ProcessProfile(0.0, 0, GB_DECIMAL),
                            SystemCapacity(32, 32 * GB, 100 * GB_DECIMAL))
    assert decimal.disk.allowed == 80


def test_seed_all_three_together() -> None:
    """The minimum wins; cpu and memory tie at 25 and cpu is preferred."""
    decision = compute_limit(SEED_PROFILE, SEED_CAPACITY)
    assert [c.allowed for c in decision.constraints] == [25, 25, 80]
    assert (decision.limit, decision.binding) == (25, "cpu")
    assert decision.describe() == "limit 25 (cpu binds: 25 by cpu, 25 by memory, 80 by disk)"


@pytest.mark.parametrize(
    "cores, per, fraction, expected",
    [
        (32, 1.0, 0.8, 25),
        (10, 0.1, 0.8, 80),
        (4, 0.1, 0.8, 32),
        (3, 0.3, 0.9, 9),
        (10, 1.0, 0.7, 7),
        (100, 1.0, 1.0, 100),
        # Each of these gives one less with naive floats (e.g. 0.3 * 3 / 0.1 == 8.999...).
        (3, 0.1, 0.3, 9),
        (43, 0.2, 0.2, 43),
        (43, 0.1, 0.1, 43),
    ])
def test_floor_is_exact_for_decimal_inputs(cores: int, per: float, fraction: float,
                                           expected: int) -> None:
    """Products that are whole in decimal stay whole: no 79 for 80, no 31 for 32."""
    profile = ProcessProfile(cpu_cores=per, rss_bytes=0, output_bytes=0)
    decision = compute_limit(profile, SystemCapacity(cores, GB, GB), cpu_fraction=fraction)
    assert decision.cpu.allowed == expected


def test_ties_prefer_cpu_then_memory_then_disk() -> None:
    """Equal limits name the resource the operator is most likely to tune first."""
    capacity = SystemCapacity(logical_cores=10, available_memory=10 * GB, free_disk=10 * GB)
    assert compute_limit(ProcessProfile(1.0, GB, GB), capacity).binding == "cpu"
    assert compute_limit(ProcessProfile(0.5, GB, GB), capacity).binding == "memory"
    assert compute_limit(ProcessProfile(0.5, GB // 2, GB), capacity).binding == "disk"


def test_max_processes_cap_binds_only_when_strictly_lower() -> None:
    """A cap equal to a constraint leaves the resource named: it is the real reason."""
    capped = compute_limit(SEED_PROFILE, SEED_CAPACITY, max_processes=4)
    assert (capped.limit, capped.binding) == (4, "max_processes")
    assert "max_processes binds" in capped.describe()
    equal = compute_limit(SEED_PROFILE, SEED_CAPACITY, max_processes=25)
    assert (equal.limit, equal.binding) == (25, "cpu")
    loose = compute_limit(SEED_PROFILE, SEED_CAPACITY, max_processes=100)
    assert (loose.limit, loose.binding) == (25, "cpu")


def test_jobs_cap() -> None:
    """Never plan more slots than jobs; max_processes wins a tie with jobs."""
    few = compute_limit(SEED_PROFILE, SEED_CAPACITY, jobs=3)
    assert (few.limit, few.binding) == (3, "jobs")
    both = compute_limit(SEED_PROFILE, SEED_CAPACITY, max_processes=5, jobs=3)
    assert (both.limit, both.binding) == (3, "jobs")
    tie = compute_limit(SEED_PROFILE, SEED_CAPACITY, max_processes=3, jobs=3)
    assert (tie.limit, tie.binding) == (3, "max_processes")
    many = compute_limit(SEED_PROFILE, SEED_CAPACITY, jobs=1000)
    assert (many.limit, many.binding) == (25, "cpu")


def test_zero_jobs_still_gives_a_limit_of_one() -> None:
    """The limit is never 0, even when asked with no jobs left."""
    decision = compute_limit(SEED_PROFILE, SEED_CAPACITY, jobs=0)
    assert (decision.limit, decision.binding) == (1, "jobs")


def test_near_zero_figures_do_not_bind() -> None:
    """Idle jobs would divide by ~0; such constraints step aside instead."""
    profile = ProcessProfile(cpu_cores=NEAR_ZERO_CPU / 2,
                             rss_bytes=NEAR_ZERO_RSS - 1,
                             output_bytes=NEAR_ZERO_OUTPUT - 1)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert all(c.allowed is None and not c.binds for c in decision.constraints)
    # Nothing binds: one job per logical core, documented fallback.
    assert (decision.limit, decision.binding) == (32, "none")
    assert decision.describe() == ("limit 32 (nothing binds, one job per logical core: "
                                   "no limit by cpu, no limit by memory, no limit by disk)")


def test_near_zero_thresholds_are_inclusive_of_the_threshold_itself() -> None:
    """A figure exactly at the threshold is real usage and binds."""
    profile = ProcessProfile(cpu_cores=NEAR_ZERO_CPU,
                             rss_bytes=NEAR_ZERO_RSS,
                             output_bytes=NEAR_ZERO_OUTPUT)
    decision = compute_limit(profile, HUGE)
    assert all(c.binds for c in decision.constraints)


def test_one_near_zero_constraint_leaves_the_others_binding() -> None:
    """Only the idle resource steps aside; 0.8 * 32 / 4 GB allows 6."""
    profile = ProcessProfile(cpu_cores=0.001, rss_bytes=4 * GB, output_bytes=10 * MB)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert decision.cpu.allowed is None
    assert (decision.limit, decision.binding) == (6, "memory")
    assert decision.describe().startswith("limit 6 (memory binds: no limit by cpu, 6 by memory")


def test_nothing_binds_caps_still_apply_and_never_raise_the_limit() -> None:
    """The per-core fallback is capped too, and a cap can only lower the limit."""
    capped = compute_limit(TINY, SEED_CAPACITY, max_processes=8)
    assert (capped.limit, capped.binding) == (8, "max_processes")
    few = compute_limit(TINY, SEED_CAPACITY, jobs=5)
    assert (few.limit, few.binding) == (5, "jobs")
    many = compute_limit(TINY, SEED_CAPACITY, jobs=500)
    assert (many.limit, many.binding) == (32, "none")


def test_a_job_bigger_than_the_machine_still_gets_one() -> None:
    """A job needing more than the machine still runs, alone."""
    profile = ProcessProfile(cpu_cores=64.0, rss_bytes=64 * GB, output_bytes=GB)
    decision = compute_limit(profile, SEED_CAPACITY)
    assert decision.cpu.allowed == 0 and decision.memory.allowed == 0
    assert (decision.limit, decision.binding) == (1, "cpu")
    assert "raised to the minimum of 1" in decision.describe()


def test_no_free_disk_still_gives_one() -> None:
    """A full disk does not stall the queue at 0; the job's own failure reports it."""
    decision = compute_limit(SEED_PROFILE, SystemCapacity(32, 32 * GB, 0))
    assert (decision.limit, decision.binding) == (1, "disk")


def test_constraint_records_its_inputs() -> None:
    """The decision keeps every figure so the UI can explain itself."""
    decision = compute_limit(SEED_PROFILE, SEED_CAPACITY, memory_fraction=0.5)
    assert decision.memory == Constraint(name="memory",
                                         per_process=GB,
                                         system=32 * GB,
                                         fraction=0.5,
                                         allowed=16)
    assert decision.binding == "memory"
    assert decision.memory.describe() == "16 by memory"


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_bad_fraction_is_rejected(fraction: float) -> None:
    """Fractions outside (0, 1] are programming errors, not silently clamped."""
    with pytest.raises(ValueError, match="disk_fraction"):
        compute_limit(SEED_PROFILE, SEED_CAPACITY, disk_fraction=fraction)


def test_negative_figure_is_rejected() -> None:
    """A negative measurement is a bug upstream; fail loudly."""
    with pytest.raises(ValueError, match="cpu"):
        compute_limit(ProcessProfile(-1.0, GB, GB), SEED_CAPACITY)


def test_percentile_nearest_rank() -> None:
    """Nearest-rank returns an observed value (the classic Wikipedia example set)."""
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 5) == 15
    assert percentile(values, 30) == 20
    assert percentile(values, 40) == 20
    assert percentile(values, 50) == 35
    assert percentile(values, 100) == 50
    assert percentile(values, 0) == 15
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile([3, 1, 2], 50) == 2  # order of the input does not matter
    assert percentile([7.5], 90) == 7.5


@pytest.mark.parametrize("q", [-1, 100.5, float("nan")])
def test_percentile_rejects_bad_q(q: float) -> None:
    """q outside [0, 100] is an error rather than a clamp."""
    with pytest.raises(ValueError):
        percentile([1, 2, 3], q)


def test_percentile_rejects_empty() -> None:
    """No data has no percentile."""
    with pytest.raises(ValueError):
        percentile([], 50)


def test_learn_profile_takes_each_percentile_independently() -> None:
    """Each figure gets its own q-th percentile; integers stay integers."""
    rss = [i * MB for i in range(1, 11)]
    cpu = [1.0] * 9 + [4.0]
    out = [10 * MB] * 10
    profile = learn_profile(rss, cpu, out)
    assert profile == ProcessProfile(cpu_cores=1.0,
                                     rss_bytes=9 * MB,
                                     output_bytes=10 * MB,
                                     source="learned")
    assert learn_profile(rss, cpu, out, q=100).cpu_cores == 4.0
    assert isinstance(profile.rss_bytes, int) and isinstance(profile.output_bytes, int)


def test_learn_profile_rejects_missing_data() -> None:
    """Missing data must not turn into a zero (non-binding) figure."""
    with pytest.raises(ValueError, match="output_bytes"):
        learn_profile([MB], [1.0], [])
