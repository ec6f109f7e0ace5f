"""The orchestrator's own cgroup limits, read from fake cgroup trees (v2, v1, nested, none)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_tui.core import cgroupfs
from orch_tui.core.cgroupfs import CgroupLimits
from orch_tui.core.limits import capacity, cluster
from orch_tui.core.local_runner import tighter
from orch_tui.core.runner import NodeStats
from orch_tui.core.scaling import CapacitySource, ProcessProfile, compute_limit
from orch_tui.core import events as ev
from orch_tui.headless import HeadlessReporter, describe_decision
from orch_tui.tui.model import RunModel
from orch_tui.tui.widgets.gauges import ResourceGauge
from tests.helpers import run_cli, write_workspace
from tests.tmux import wait_until

MIB = 1024 * 1024
GIB = 1024 * MIB

V2_MOUNTS = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_MOUNTS = ("32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
             "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
             "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")


def write(root: Path, relative: str, text: str) -> None:
    """One file of the fake tree."""
    path = root / relative.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v2_group(root: Path, group: str, **files: str) -> None:
    """A v2 group's files (`memory_max="..."` is memory.max)."""
    for name, text in files.items():
        write(root, f"sys/fs/cgroup/{group}/{name.replace('_', '.', 1)}", text + "\n")


def host(cores: int = 8, total: int = 23 * GIB, available: int = 20 * GIB) -> NodeStats:
    """The host's own figures."""
    return NodeStats("local", cores, 10.0, total, available, 100 * GIB, 200 * GIB)


def test_v2_memory_counts_inactive_file_as_available(tmp_path: Path) -> None:
    write(tmp_path, "proc/self/cgroup", "0::/system.slice/render.service\n")
    write(tmp_path, "proc/self/mountinfo", V2_MOUNTS)
    v2_group(tmp_path,
             "system.slice/render.service",
             memory_max=str(1536 * MIB),
             memory_current=str(1000 * MIB),
             memory_stat=f"anon {800 * MIB}\nfile {200 * MIB}\ninactive_file {150 * MIB}",
             cpu_max="150000 100000",
             memory_pressure="some avg10=12.50 avg60=3.00 avg300=1.00 total=42\n"
             "full avg10=1.00 avg60=0.00 avg300=0.00 total=7")
    limits = cgroupfs.read_limits(cgroupfs.find_groups(tmp_path))
    assert limits == CgroupLimits(memory_limit=1536 * MIB,
                                  available_memory=(1536 - 1000 + 150) * MIB,
                                  cpu_quota=1.5,
                                  memory_pressure=12.5)
    assert limits.cores == 2


def test_v2_tightest_ancestor_and_max(tmp_path: Path) -> None:
    """A parent's limit binds its children: the least headroom on the path wins, `max` is none."""
    write(tmp_path, "proc/self/cgroup", "0::/outer/inner\n")
    write(tmp_path, "proc/self/mountinfo", V2_MOUNTS)
    v2_group(tmp_path,
             "outer/inner",
             memory_max="max",
             memory_current=str(GIB),
             cpu_max="max 100000")
    v2_group(tmp_path,
             "outer",
             memory_max=str(2 * GIB),
             memory_current=str(int(1.5 * GIB)),
             cpu_max="50000 100000")
    limits = cgroupfs.read_limits(cgroupfs.find_groups(tmp_path))
    assert limits.memory_limit == 2 * GIB
    assert limits.available_memory == GIB // 2
    assert limits.cpu_quota == 0.5 and limits.cores == 1
    assert limits.memory_pressure is None


def test_v2_unlimited_everywhere(tmp_path: Path) -> None:
    write(tmp_path, "proc/self/cgroup", "0::/user.slice\n")
    write(tmp_path, "proc/self/mountinfo", V2_MOUNTS)
    v2_group(tmp_path, "user.slice", memory_max="max", memory_current="1234", cpu_max="max 100000")
    assert cgroupfs.read_limits(cgroupfs.find_groups(tmp_path)) == CgroupLimits()


def test_v2_container_namespace_mount_of_a_subtree(tmp_path: Path) -> None:
    """In a container the mount's root is our group: paths are relative to it."""
    write(tmp_path, "proc/self/cgroup", "0::/docker/abc\n")
    write(tmp_path, "proc/self/mountinfo",
          "30 23 0:26 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")
    v2_group(tmp_path, "", memory_max=str(GIB), memory_current=str(GIB // 4))
    limits = cgroupfs.read_limits(cgroupfs.find_groups(tmp_path))
    assert limits.memory_limit == GIB and limits.available_memory == 3 * GIB // 4


def test_v1_memory_and_cfs_quota(tmp_path: Path) -> None:
    write(tmp_path, "proc/self/cgroup", "9:memory:/jobs/a\n8:cpu,cpuacct:/jobs\n0::/\n")
    write(tmp_path, "proc/self/mountinfo", V1_MOUNTS)
    base = "sys/fs/cgroup/memory"
    write(tmp_path, f"{base}/jobs/a/memory.limit_in_bytes", "9223372036854771712\n")
    write(tmp_path, f"{base}/jobs/a/memory.usage_in_bytes", str(GIB))
    write(tmp_path, f"{base}/jobs/a/memory.stat", f"inactive_file 1\ntotal_inactive_file {MIB}\n")
    write(tmp_path, f"{base}/jobs/memory.limit_in_bytes", str(3 * GIB))
    write(tmp_path, f"{base}/jobs/memory.usage_in_bytes", str(2 * GIB))
    write(tmp_path, f"{base}/jobs/memory.stat", f"total_inactive_file {100 * MIB}\n")
    write(tmp_path, f"{base}/memory.limit_in_bytes", "9223372036854771712\n")
    write(tmp_path, f"{base}/memory.usage_in_bytes", str(5 * GIB))
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/jobs/cpu.cfs_quota_us", "300000")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/jobs/cpu.cfs_period_us", "100000")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000")
    limits = cgroupfs.read_limits(cgroupfs.find_groups(tmp_path))
    assert limits == CgroupLimits(memory_limit=3 * GIB,
                                  available_memory=GIB + 100 * MIB,
                                  cpu_quota=3.0,
                                  memory_pressure=None)


def test_no_cgroup_filesystem(tmp_path: Path) -> None:
    assert cgroupfs.find_groups(tmp_path) == cgroupfs.Groups()
    assert cgroupfs.read_limits(cgroupfs.find_groups(tmp_path)) == CgroupLimits()
    assert tighter(host(), CgroupLimits()) == host()


def test_this_machine_reads_without_error() -> None:
    """Whatever this machine has, reading it gives figures or none, never an exception."""
    limits = cgroupfs.read_limits(cgroupfs.find_groups())
    assert limits.memory_limit is None or limits.memory_limit > 0


def test_tighter_takes_the_cgroup_where_it_binds() -> None:
    group = CgroupLimits(memory_limit=1536 * MIB, available_memory=1400 * MIB, cpu_quota=1.2)
    stats = tighter(host(), group)
    assert (stats.total_memory, stats.available_memory) == (1536 * MIB, 1400 * MIB)
    assert stats.logical_cores == 2
    assert stats.memory_source is stats.cores_source is CapacitySource.CGROUP
    # The host's headroom binds when it is the smaller; a quota above the affinity does not.
    stats = tighter(host(cores=2, available=GIB), CgroupLimits(1536 * MIB, 1400 * MIB, 4.0))
    assert stats.available_memory == GIB and stats.memory_source is CapacitySource.CGROUP
    assert stats.logical_cores == 2 and stats.cores_source is CapacitySource.HOST
    # A limit above the host's RAM is no limit.
    stats = tighter(host(), CgroupLimits(64 * GIB, 60 * GIB, None, 0.5))
    assert stats.total_memory == 23 * GIB and stats.memory_source is CapacitySource.HOST
    assert stats.memory_pressure == 0.5


def test_capacity_carries_the_source_to_the_rule() -> None:
    stats = tighter(host(), CgroupLimits(1536 * MIB, 1400 * MIB, None))
    system = capacity(cluster({"local": stats}), 0, 0)
    assert system.memory_source is CapacitySource.CGROUP
    assert system.cores_source is CapacitySource.HOST
    both = cluster({"a": stats, "b": host()})
    assert both.memory_source is CapacitySource.CGROUP


def test_calibration_line_says_the_cgroup_limit_applies() -> None:
    system = capacity(tighter(host(), CgroupLimits(1536 * MIB, 1496 * MIB, 2.0)), 0, 0)
    decision = compute_limit(ProcessProfile(1.0, 314 * MIB, MIB), system)
    line = describe_decision(decision)
    assert "memory 314 MiB/proc of 1.46 GiB (cgroup limit) x0.8 -> 3" in line
    assert "cpu 1.00 cores/proc of 2 cores (cgroup limit)" in line
    assert "(cgroup limit)" not in describe_decision(
        compute_limit(ProcessProfile(1.0, 314 * MIB, MIB), capacity(host(), 0, 0)))


@pytest.fixture
def memory_group() -> Iterator[tuple[Path, str]]:
    """A child memory cgroup of ours limited to 1.5 GiB: (its folder, its OOM-kill counter's
    file); skipped with the reason when this machine does not let us make one."""
    groups = cgroupfs.find_groups()
    candidates = [(groups.memory[0], "memory.limit_in_bytes",
                   "memory.oom_control")] if groups.memory else []
    if groups.unified and "memory" in (groups.unified[0] / "cgroup.subtree_control").read_text():
        candidates.insert(0, (groups.unified[0], "memory.max", "memory.events"))
    reasons = []
    for parent, limit_file, events_file in candidates:
        group = parent / f"orch-tui-test-{os.getpid()}"
        try:
            group.mkdir()
        except OSError as exc:
            reasons.append(f"cannot create {group}: {exc.strerror}")
            continue
        try:
            (group / limit_file).write_text(str(1536 * MIB))
        except OSError as exc:
            group.rmdir()
            reasons.append(f"cannot limit {group}: {exc.strerror}")
            continue
        yield group, events_file
        wait_until(lambda: not (group / "cgroup.procs").read_text().strip(),
                   what="the test's cgroup to empty")
        group.rmdir()
        return
    pytest.skip("no memory cgroup can be made here: " +
                ("; ".join(reasons) or "no memory controller we can write"))


def oom_kills(group: Path, events_file: str) -> int:
    """The kernel's count of OOM kills in `group` (v2 memory.events, v1 memory.oom_control)."""
    for line in (group / events_file).read_text().splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill":
            return int(value)
    raise AssertionError(f"no oom_kill line in {group / events_file}")


def run_in_group(tmp_path: Path, memory_group: tuple[Path, str], jobs: int,
                 worker_args: list[str]) -> str:
    """The headless CLI on `jobs` inputs, moved into the group before it starts (as a container
    would put it): all must succeed with no OOM kill in the group. Its output."""
    group, events_file = memory_group
    ws = write_workspace(tmp_path / "ws",
                         jobs,
                         worker_args=worker_args,
                         resources={"stabilization_seconds": 1.0})

    def enter_group() -> None:
        (group / "cgroup.procs").write_text(str(os.getpid()))

    result = run_cli(str(ws.config), "--headless", timeout=400, preexec_fn=enter_group)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{jobs} succeeded" in result.stdout
    assert oom_kills(group, events_file) == 0, result.stdout
    return result.stdout


def test_a_real_run_in_a_memory_cgroup_divides_its_limit_not_the_hosts(tmp_path, memory_group):
    """The issue's case: 8 jobs of 300 MiB under a 1.5 GiB limit on a machine with far more
    memory: the orchestrator calibrates against the group's limit, so none is OOM-killed."""
    output = run_in_group(tmp_path, memory_group, 8, ["--hold-mb", "300", "--seconds", "2"])
    calibration = next(line for line in output.splitlines() if line.startswith("calibration"))
    assert "(cgroup limit)" in calibration
    assert "memory 1.50 GiB (cgroup limit)" in output, output  # the headless capacity line
    limit = int(calibration.rsplit("=> limit ", 1)[1].split()[0])
    assert 1 <= limit <= 4, calibration


def test_jobs_that_grow_after_calibration_are_requeued_by_us_not_oom_killed(tmp_path, memory_group):
    """4 jobs that calibrate under 100 MiB, then grow 50 MiB a second to 600 MiB, under the
    same 1.5 GiB limit: the guard pauses, then kills and requeues the youngest before the kernel
    has to; every job ends succeeded and the group's OOM-kill count stays 0."""
    output = run_in_group(
        tmp_path, memory_group, 4,
        ["--hold-mb", "80", "--grow-mb-per-second", "50", "--grow-to-mb", "600", "--seconds", "14"])
    assert "memory critical: job #" in output, output


FIGURES = {
    "node": "local",
    "logical_cores": 2,
    "cpu_percent": 5.0,
    "total_memory": 1536 * MIB,
    "available_memory": GIB,
    "memory_reserve": 300 * MIB,
    "free_disk": GIB,
    "disk_total": GIB,
    "disk_reserve": 0,
    "projected_disk_use": 0
}


def test_headless_says_once_that_a_cgroup_limit_applies() -> None:
    stream = io.StringIO()
    reporter = HeadlessReporter(stream)
    reporter(ev.SystemSample(time=0.0, **FIGURES))
    assert stream.getvalue() == ""  # the host's figures: nothing to say
    cgroup = ev.SystemSample(time=1.0, **FIGURES, memory_source=CapacitySource.CGROUP)
    reporter(cgroup)
    reporter(cgroup)
    assert stream.getvalue() == ("capacity: 2 cores, memory 1.50 GiB (cgroup limit) "
                                 "(1.00 GiB available)\n")


def test_the_gauges_say_when_the_cgroup_limit_is_the_total() -> None:
    model = RunModel([], clock=lambda: 0.0)
    model.apply(
        ev.SystemSample(time=1.0,
                        **FIGURES,
                        memory_source=CapacitySource.CGROUP,
                        cores_source=CapacitySource.CGROUP))
    memory = ResourceGauge(model, "memory").text(120).plain
    assert "1.00 GiB free of 1.50 GiB (cgroup limit), reserve 300 MiB" in memory
    assert "5% of 2 cores (cgroup limit)" in ResourceGauge(model, "cpu").text(120).plain
    assert "(cgroup limit)" not in ResourceGauge(model, "memory").text(60).plain  # narrow
