"""`--adaptive`: one job more than the cpu rule, kept only when the measured rate of work rises.

The scheduler tests run on the fake runner and clock (tests/fake_runner.py): each job's length
is scripted from how many others run when it starts, so two at once is faster than one, or not.
The node has 2 cores and a job uses 1.6 of them: the cpu rule's limit is 1 (0.8 x 2 / 1.6).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orch_tui import cli
from orch_tui.core import events as ev
from orch_tui.core.config import ResourcesConfig, load_config
from orch_tui.core.errors import ConfigError
from orch_tui.core.events import AdaptivePhase, AdaptiveStep, LimitSource
from orch_tui.core.limits import ADAPTIVE_GAIN, AdaptiveLimit, LimitPolicy
from orch_tui.core.plan import JobSpec
from orch_tui.core.scaling import ProcessProfile, SystemCapacity
from tests.fake_runner import GB, MB, FakeRun, Script, start_fake_run

#: A settle time longer than a job: the fake paces a job by the jobs running at its start, so the
#: concurrency's own pace is reached once every job started before the change has ended.
RESOURCES = {"stabilization_seconds": 25, "sample_interval": 1}


def paced(lengths: Callable[[int], float], holder: list[FakeRun],
          **figures: float) -> Callable[[JobSpec, int], Script]:
    """Scripts whose length is `lengths(jobs running at its start, itself included)`."""

    def script(_spec: JobSpec, _attempt: int) -> Script:
        running = len(holder[0].runner.running) + 1 if holder else 1
        return Script(seconds=lengths(running), cpu_cores=1.6, ffmpeg=True, **figures)

    return script


async def adaptive_run(workspace,
                       lengths: Callable[[int], float],
                       *,
                       jobs: int = 60,
                       resources: dict | None = None,
                       **kwargs) -> FakeRun:
    """A finished run of `jobs` paced jobs on a 2-core fake node."""
    ws = workspace(jobs, size=MB, resources={**RESOURCES, **(resources or {})})
    holder: list[FakeRun] = []
    run = await start_fake_run(ws.plan(), paced(lengths, holder), overwrite=True, **kwargs)
    holder.append(run)
    run.runner.node(logical_cores=2)
    assert await run.result() == 0
    return run


def steps(run: FakeRun) -> list[ev.LimitChanged]:
    """The adaptive limit changes, in order."""
    return [e for e in run.recorder.of(ev.LimitChanged) if e.source is LimitSource.ADAPTIVE]


def phases(run: FakeRun) -> list[tuple[AdaptivePhase, int]]:
    """(phase, limit) of each adaptive change."""
    return [(e.adaptive.phase, e.limit) for e in steps(run) if e.adaptive is not None]


def two_faster_three_not(running: int) -> float:
    """Alone 10 s; two at once 15 s each (+33% work per second); three 22.5 s (no better)."""
    return 10.0 if running == 1 else 7.5 * running


def faster_up_to_three(running: int) -> float:
    """Alone 10 s; two at once 15 s each (+33% work per second); three 18 s (+25% more); four
    40 s (slower)."""
    return {1: 10.0, 2: 15.0, 3: 18.0}.get(running, 10.0 * running)


async def test_a_raise_that_speeds_the_work_up_is_kept_and_the_next_is_stepped_back(workspace):
    run = await adaptive_run(workspace, two_faster_three_not, adaptive=True)
    seen = phases(run)
    assert seen[:4] == [(AdaptivePhase.TRYING, 2), (AdaptivePhase.KEPT, 2),
                        (AdaptivePhase.TRYING, 3), (AdaptivePhase.STEPPED_BACK, 2)]
    kept = steps(run)[1]
    assert kept.adaptive is not None and kept.adaptive.gain is not None
    assert kept.adaptive.gain >= ADAPTIVE_GAIN
    assert kept.reason.startswith("cpu rule 1, +1 measured: +")
    assert kept.reason.endswith("% throughput")
    back = steps(run)[3].adaptive
    assert back is not None and back.gain is not None and back.gain < ADAPTIVE_GAIN
    assert run.orchestrator.decision is not None and run.orchestrator.decision.limit == 1


async def test_the_first_try_starts_when_calibration_ends_with_its_rate_as_baseline(workspace):
    # A cpu rule of one job: the calibration job ran alone, so its rate is the one-job rate
    # and no window at one job is spent before trying two.
    run = await adaptive_run(workspace, two_faster_three_not, adaptive=True)
    calibrated = run.recorder.of(ev.CalibrationFinished)[0]
    first = steps(run)[0]
    assert first.adaptive is not None and first.adaptive.phase is AdaptivePhase.TRYING
    assert 0 <= first.time - calibrated.time <= 2 * RESOURCES["sample_interval"]
    kept = steps(run)[1]
    assert kept.adaptive is not None and kept.adaptive.phase is AdaptivePhase.KEPT


async def test_a_kept_raise_is_followed_at_once_by_the_next_try(workspace):
    # The kept try's window is the baseline of the next: three is tried on the next sweep, not
    # a whole window at two later.
    run = await adaptive_run(workspace, faster_up_to_three, adaptive=True)
    changes = steps(run)
    assert phases(run)[:3] == [(AdaptivePhase.TRYING, 2), (AdaptivePhase.KEPT, 2),
                               (AdaptivePhase.TRYING, 3)]
    assert 0 < changes[2].time - changes[1].time <= 2 * RESOURCES["sample_interval"]
    # Four is tried at once too, and stepped back: slower.
    assert phases(run)[3:6] == [(AdaptivePhase.KEPT, 3), (AdaptivePhase.TRYING, 4),
                                (AdaptivePhase.STEPPED_BACK, 3)]


async def test_a_raise_that_does_not_speed_the_work_up_is_stepped_back(workspace):
    run = await adaptive_run(workspace, lambda running: 10.0 * running, adaptive=True)
    seen = phases(run)
    assert seen[:2] == [(AdaptivePhase.TRYING, 2), (AdaptivePhase.STEPPED_BACK, 1)]
    assert AdaptivePhase.KEPT not in [phase for phase, _ in seen]
    assert "stepped back: one job more gave" in steps(run)[1].reason


async def test_the_config_key_turns_it_on(workspace):
    run = await adaptive_run(workspace, two_faster_three_not, resources={"adaptive": True})
    assert (AdaptivePhase.KEPT, 2) in phases(run)


async def test_off_by_default_the_seeds_rule_stands(workspace):
    run = await adaptive_run(workspace, two_faster_three_not)
    assert not steps(run)
    assert run.runner.peak == 1
    assert all(e.source.measured for e in run.recorder.of(ev.LimitChanged))


async def test_never_above_max_processes(workspace):
    # Every job more is faster here; max_processes 2 stops it at 2, and 1 allows no try at all.
    run = await adaptive_run(workspace,
                             lambda running: 10.0,
                             resources={"max_processes": 2},
                             adaptive=True)
    assert max(e.limit for e in run.recorder.of(ev.LimitChanged)) == 2
    assert run.runner.peak == 2
    run = await adaptive_run(workspace,
                             lambda running: 10.0,
                             resources={"max_processes": 1},
                             adaptive=True)
    assert not steps(run) and run.runner.peak == 1


async def test_never_beyond_what_memory_allows(workspace):
    # 0.8 x 9 GiB / 5 GiB: memory allows 1 job, as cpu does (cpu binds on the tie).
    run = await adaptive_run(workspace, lambda running: 10.0, adaptive=True)
    assert steps(run)  # the same jobs with memory to spare do get a try
    holder: list[FakeRun] = []
    ws = workspace(60, size=MB, resources=RESOURCES)
    run = await start_fake_run(ws.plan(),
                               paced(lambda running: 10.0, holder, rss_bytes=5 * GB),
                               adaptive=True,
                               overwrite=True)
    holder.append(run)
    run.runner.node(logical_cores=2)
    assert await run.result() == 0
    assert not steps(run) and run.runner.peak == 1


async def test_never_with_a_fixed_jobs_count(workspace):
    run = await adaptive_run(workspace, two_faster_three_not, jobs=10, adaptive=True, max_procs=1)
    assert not steps(run) and run.runner.peak == 1


# --- the policy alone, with plain numbers

PROFILE = ProcessProfile(cpu_cores=1.6, rss_bytes=50 * MB, output_bytes=MB)
NODE = SystemCapacity(logical_cores=2, available_memory=9 * GB, free_disk=100 * GB)


def feed(policy: LimitPolicy,
         rate: float,
         seconds: float,
         start: float = 0.0,
         **kwargs) -> list[ev.LimitChanged]:
    """Sweep once a second for `seconds` with the limit's jobs running at `rate` work/s."""
    changes = []
    for tick in range(int(seconds)):
        now = start + tick
        kwargs.setdefault("pressure", False)
        change = policy.adapt(now, rate * now, policy.limit, 10, **kwargs)
        if change is not None:
            changes.append(change)
    return changes


def calibrated(profile: ProcessProfile = PROFILE, **resources) -> LimitPolicy:
    """A policy with --adaptive after calibration."""
    policy = LimitPolicy(ResourcesConfig(stabilization_seconds=2, **resources), adaptive=True)
    policy.runnable = 100
    policy.calibrated(0.0, profile, 1.0, NODE, LimitSource.WINDOW)
    assert policy.decision is not None and policy.decision.binding == "cpu"
    return policy


def test_no_raise_while_memory_or_disk_pressure_is_active():
    policy = calibrated()
    assert feed(policy, 1.0, 200, pressure=True) == []
    assert policy.limit == 1


def test_pressure_takes_the_extra_job_away_and_backs_off():
    policy = calibrated()
    tried = feed(policy, 1.0, 12)  # a baseline window at 1 job, then a try of 2
    assert [change.limit for change in tried] == [2]
    change = policy.adapt(31.0, 31.0, 2, 10, pressure=True)
    assert change is not None and change.limit == 1 and change.adaptive is not None
    assert change.adaptive.phase is AdaptivePhase.PRESSURE
    assert change.reason == "cpu rule 1, memory or disk pressure: no job above it"
    assert feed(policy, 1.0, 40, start=32.0) == []  # backing off


def test_the_limit_line_is_made_from_the_typed_figures():
    step = AdaptiveStep(AdaptivePhase.KEPT, cpu_limit=1, extra=1, gain=0.14)
    change = ev.LimitChanged(time=0.0,
                             limit=2,
                             previous=2,
                             source=LimitSource.ADAPTIVE,
                             adaptive=step)
    assert change.reason == "cpu rule 1, +1 measured: +14% throughput"


def test_a_window_starts_only_once_the_new_job_is_steady():
    adaptive = AdaptiveLimit(settle=2)
    policy = calibrated()
    assert policy.decision is not None
    # Fewer jobs running than the limit (a job launching) measures nothing.
    for now in range(100):
        assert adaptive.step(float(now),
                             float(now),
                             running=0,
                             rule=policy.decision,
                             room=5,
                             pressure=False) is None


# --- the command line and the config


def test_jobs_with_adaptive_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--jobs", "2", "--adaptive", "config.yaml"])
    assert info.value.code == 2
    assert "--adaptive" in capsys.readouterr().err


def test_run_flags_pass_adaptive_to_the_run_process():
    args = cli.build_parser().parse_args(["--adaptive", "config.yaml"])
    assert "--adaptive" in cli.run_flags(args)
    assert cli.options_from(args, []).adaptive


def _config(tmp_path: Path, resources: str) -> Path:
    (tmp_path / "inputs.txt").write_text("", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(f"""\
        binary:
          path: /bin/true
          flags: ["{{input_file}}"]
        directories:
          input_file_list: inputs.txt
          output_dir: out
        resources:
          {resources}
        """),
                    encoding="utf-8")
    return path


def test_config_key_defaults_off_and_reads_a_boolean(tmp_path):
    assert load_config(_config(tmp_path, "cpu_fraction: 0.8")).resources.adaptive is False
    assert load_config(_config(tmp_path, "adaptive: true")).resources.adaptive is True


@pytest.mark.parametrize("value", ['"yes"', "1", "[true]"])
def test_config_key_errors_are_located(tmp_path, value):
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, f"adaptive: {value}"))
    error = info.value
    assert error.key == "resources.adaptive"
    assert (error.line, error.column) == (8, 13)
    assert "expected true or false" in str(error)
