"""The limit policy with plain numbers: where the limit comes from, and what may change it."""

from __future__ import annotations

from orch_tui.core.config import MAX_JOBS, ResourcesConfig
from orch_tui.core.events import LimitSource
from orch_tui.core.limits import LimitPolicy, capacity, cluster
from orch_tui.core.runner import NodeStats
from orch_tui.core.scaling import ProcessProfile, SystemCapacity

GB = 1024**3
MB = 1024**2

MACHINE = SystemCapacity(logical_cores=10, available_memory=100 * GB, free_disk=1000 * GB)
ONE_CORE = ProcessProfile(cpu_cores=1.0, rss_bytes=1 * GB, output_bytes=1 * GB)


def node(name: str, cores: int = 4, available: int = 8 * GB, free: int = 100 * GB) -> NodeStats:
    """A node's figures."""
    return NodeStats(name, cores, 50.0, 16 * GB, available, free, 200 * GB)


def test_the_fixed_count_is_the_limit_and_learning_never_moves_it():
    policy = LimitPolicy(ResourcesConfig(), fixed=3)
    change = policy.start_fixed(1.0)
    assert change is not None and (change.limit, change.previous) == (3, 0)
    assert change.source is LimitSource.MAX_PROCS and change.decision is None
    assert policy.limit == 3 and policy.decision is None
    assert policy.learn(2.0, 0.1, 1 * MB, 1.0, 1 * MB, MACHINE) is None
    assert policy.limit == 3 and policy.learner.observations == 1, "still recorded"


def test_calibration_applies_the_three_constraint_rule_and_seeds_the_learner():
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 100
    decision, change = policy.calibrated(5.0, ONE_CORE, 1.0, MACHINE, LimitSource.WINDOW)
    assert decision.limit == 8 and decision.binding == "cpu"  # 80 % of 10 cores, 1 core each
    assert change is not None and change.limit == 8 and change.source is LimitSource.WINDOW
    assert change.decision is decision and policy.decision is decision
    assert policy.learner.observations == 1 and policy.output_ratio() == 1.0


def test_the_jobs_cap_never_gives_more_slots_than_jobs():
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 2
    decision, _ = policy.calibrated(0.0, ONE_CORE, 1.0, MACHINE, LimitSource.WINDOW)
    assert decision.limit == 2 and decision.binding == "jobs"


def test_learning_follows_the_90th_percentile_of_finished_jobs():
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 1000
    policy.calibrated(0.0, ONE_CORE, 1.0, MACHINE, LimitSource.WINDOW)
    changes = [policy.learn(float(t), 0.5, 1 * GB, 1.0, 1 * GB, MACHINE) for t in range(1, 10)]
    # Nine half-core jobs and the calibration's one core: the 90th percentile is 0.5 core.
    last = [c for c in changes if c is not None][-1]
    assert last.source is LimitSource.LEARNED and last.limit == 16 and last.previous == 8
    assert last.observations == 10 and policy.limit == 16


def test_an_unchanged_learned_limit_updates_the_decision_without_an_event():
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 1000
    first, _ = policy.calibrated(0.0, ONE_CORE, 1.0, MACHINE, LimitSource.WINDOW)
    assert policy.learn(1.0, 1.0, 1 * GB, 1.0, 1 * GB, MACHINE) is None
    assert policy.limit == 8 and policy.decision is not first


def test_nothing_is_learned_before_a_calibration():
    policy = LimitPolicy(ResourcesConfig())
    assert policy.learn(1.0, 1.0, 1 * GB, 1.0, 1 * GB, MACHINE) is None and policy.limit == 0


def test_the_operators_limit_wins_over_learning_from_then_on():
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 1000
    policy.calibrated(0.0, ONE_CORE, 1.0, MACHINE, LimitSource.WINDOW)
    change = policy.operator(1.0, 0)
    assert change is not None and change.limit == 1 and change.source is LimitSource.OPERATOR
    assert policy.operator(2.0, 1) is None, "same limit, no decision: nothing to tell"
    assert policy.learn(3.0, 0.1, 1 * MB, 1.0, 1 * GB, MACHINE) is None and policy.limit == 1


def test_the_operators_limit_stops_at_the_most_jobs_any_machine_holds():
    """Past it, a limit would overflow the journal's 64-bit integer and kill its writer."""
    policy = LimitPolicy(ResourcesConfig())
    change = policy.operator(1.0, 2**63)
    assert change is not None and change.limit == MAX_JOBS == 4_194_304
    assert policy.operator(2.0, MAX_JOBS + 1) is None


def test_capacity_counts_our_own_jobs_memory_and_partial_outputs_as_available():
    total = node("a", cores=8, available=10 * GB, free=50 * GB)
    assert capacity(total, 3 * GB, 2 * GB) == SystemCapacity(8, 13 * GB, 52 * GB)


def test_one_node_is_itself_and_several_add_up_but_share_one_output_filesystem():
    alone = node("a")
    assert cluster({"a": alone}) is alone
    both = cluster({"a": node("a", 4, 8 * GB, 100 * GB), "b": node("b", 12, 4 * GB, 90 * GB)})
    assert (both.logical_cores, both.available_memory, both.total_memory) == (16, 12 * GB, 32 * GB)
    assert both.free_disk == 90 * GB and both.node == "a+b" and both.cpu_percent == 50.0


def test_memory_pressure_lowers_the_limit_from_the_memory_a_job_reached():
    small = SystemCapacity(logical_cores=10, available_memory=10 * GB, free_disk=1000 * GB)
    light = ProcessProfile(cpu_cores=0.1, rss_bytes=GB // 2, output_bytes=MB)
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 100
    policy.calibrated(0.0, light, 1.0, small, LimitSource.WINDOW)
    assert policy.limit == 16  # 80 % of 10 GiB at 512 MiB each
    change = policy.memory_pressure(1.0, 2 * GB, GB, small)
    assert change is not None and change.source is LimitSource.MEMORY_PRESSURE
    assert change.limit == 4 and change.previous == 16  # 80 % of 10 GiB at 2 GiB each
    assert change.decision is not None and change.decision.memory.per_process == 2 * GB
    # Jobs that finish small do not raise it back into the same shortage.
    assert policy.learn(2.0, 0.1, GB // 2, 1.0, GB, small) is None
    assert policy.limit == 4


def test_memory_pressure_lowers_even_a_fixed_limit_by_one_at_least_never_below_one():
    policy = LimitPolicy(ResourcesConfig(), fixed=3)
    policy.start_fixed(0.0)
    change = policy.memory_pressure(1.0, GB, GB, MACHINE)
    assert change is not None and (change.limit, change.previous) == (2, 3)
    assert change.reason == "memory critical"
    policy.memory_pressure(2.0, GB, GB, MACHINE)
    assert policy.memory_pressure(3.0, GB, GB, MACHINE) is None and policy.limit == 1


def test_the_disk_constraint_follows_the_real_output_ratio_not_the_windows_estimate():
    disk_bound = SystemCapacity(logical_cores=100, available_memory=100 * GB, free_disk=100 * GB)
    policy = LimitPolicy(ResourcesConfig())
    policy.runnable = 1000
    # The window could only assume outputs as large as their 10 GB inputs: 8 by disk.
    guess = ProcessProfile(cpu_cores=0.1, rss_bytes=MB, output_bytes=10 * GB)
    decision, _ = policy.calibrated(0.0, guess, 1.0, disk_bound, LimitSource.WINDOW)
    assert decision.binding == "disk" and decision.limit == 8
    # The first finished job wrote a tenth of its input: 1 GB per 10 GB input, 80 by disk.
    change = policy.learn(1.0, 0.1, MB, 0.1, 10 * GB, disk_bound)
    assert change is not None and change.limit == 80 and policy.output_ratio() == 0.1
    assert policy.decision is not None and policy.decision.disk.per_process == GB
