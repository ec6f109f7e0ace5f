"""SVG snapshots of every screen at 80x24 and 120x40, fed only deterministic events.

No core runs here: each test builds a RunModel by hand (fixed paths, fixed sizes) to script a
fixed list of core events with fixed times, and hands the jobs and the events to OrchApp through
a FakeController (the run host's stand-in) with a frozen clock. The config screen and the detail
log need real files: they are written under pytest's tmp_path and shown as if under SNAP_ROOT (the
screens' path display is mapped), so no machine-dependent folder leaks into an SVG and parallel
runs never share a folder; free disk space, the one figure the machine would leak into a screen,
is pinned with monkeypatch.

Update with `pytest tests/test_tui_snapshots.py --snapshot-update`, then look at the SVGs.
"""

# Test names state what each snapshot shows; a docstring per test would only repeat them.
# pylint: disable=missing-function-docstring

from __future__ import annotations

import os
import shutil
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path

import pytest

from orch_tui.core import events as ev
from orch_tui.core.events import JobState
from orch_tui.core.logtail import read_log
from orch_tui.core.plan import safe_log_stem
from orch_tui.core.scaling import ProcessProfile, SystemCapacity, compute_limit
from orch_tui.core.snapshot import CalibrationStatus, JobView
from orch_tui.tui.app import OrchApp
from orch_tui.tui.model import Given, JobRow, RunModel
from orch_tui.tui.screens import config as config_screen
from orch_tui.tui.screens import detail as detail_screen
from orch_tui.tui.screens.detail import DetailScreen
from tests.fake_controller import FakeController

#: Where every path a snapshot shows seems to be (files really live under tmp_path).
SNAP_ROOT = Path("/tmp/orch-tui-snapshots")
OUT = SNAP_ROOT / "out"
LOGS = OUT / ".orch-tui" / "logs"
NOW = 1000.0
MIB, GIB = 1024**2, 1024**3

SIZES = [(80, 24), (120, 40)]
sizes = pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
#: The run screen also at 200x50, where the panels' extra room goes to the charts and the
#: table's sparklines and progress bars.
RUN_SIZES = [*SIZES, (200, 50)]
run_sizes = pytest.mark.parametrize("size", RUN_SIZES, ids=[f"{w}x{h}" for w, h in RUN_SIZES])

NAMES = ("clip01.mp4", "clip02.mp4", "holiday clip 03.mp4", "clip04.mp4", "clip05.mp4",
         "clip06.mp4", "clip07_corrupt.mp4", "clip08.mp4", "clip09.mp4", "clip10.mp4",
         "clip11_corrupt.mp4", "clip12.mp4")
NASTY = ("[red]x.mp4", "oops[/bold].mp4", "[link=http://x]y[/link].mp4")

DETAIL_LOG = """\
ffmpeg version 6.1.1 Copyright (c) 2000-2023 the FFmpeg developers
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/data/in/holiday clip 03.mp4':
  Duration: 00:04:12.48, start: 0.000000, bitrate: 8123 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 1920x1080, 25 fps
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))
[libx264 @ 0x55d5c8a0] using cpu capabilities: MMX2 SSE2Fast SSSE3 SSE4.2 AVX FMA3 AVX2
[libx264 @ 0x55d5c8a0] profile High, level 3.1, 4:2:0, 8-bit
Output #0, mp4, to '/data/out/.holiday clip 03_720p.orch-tmp.mp4':
frame=  812 fps= 54 q=28.0 size=   10240KiB time=00:00:32.40 bitrate=2589.1kbits/s speed=2.16x
frame= 1630 fps= 54 q=28.0 size=   20736KiB time=00:01:05.12 bitrate=2608.4kbits/s speed=2.16x
[bold]not markup[/bold] and [red]neither is this[/red]
frame= 2451 fps= 54 q=28.0 size=   31232KiB time=00:01:37.96 bitrate=2611.7kbits/s speed=2.16x
"""

Script = namedtuple("Script", "model controller")


class ScriptModel(RunModel):
    """A model that also keeps every event applied to it: the script the fake host plays."""

    def __init__(self, rows: list[JobRow]) -> None:
        super().__init__(rows, clock=fixed_clock)
        self.jobs = tuple(
            JobView(job_id=row.job_id,
                    name=row.name,
                    input_size=row.input_size,
                    argv=row.argv,
                    log_path=row.log_path,
                    output_path=row.output_path) for row in rows)
        self.events: list[ev.Event] = []

    def apply(self, event: ev.Event) -> None:
        self.events.append(event)
        super().apply(event)


def fixed_clock() -> float:
    return NOW


# --- building models ---------------------------------------------------------------------------


def make_rows(names: Sequence[str]) -> list[JobRow]:
    """One queued row per name, with fixed sizes, commands and paths."""
    rows = []
    for index, name in enumerate(names, 1):
        stem, ext = name.rsplit(".", 1)
        output = OUT / f"{stem}_720p.{ext}"
        argv = [
            "/usr/bin/ffmpeg", "-nostdin", "-i", f"/data/in/{name}", "-vf", "scale=1280:720",
            str(output)
        ]
        rows.append(
            JobRow(job_id=index,
                   name=name,
                   input_size=1_000_000 + 137_731 * index,
                   planned=Given(argv=tuple(argv),
                                 log_path=LOGS / f"{index:05d}-{safe_log_stem(stem)}.log",
                                 output_path=output)))
    return rows


def new_model(names: Sequence[str]) -> RunModel:
    model = ScriptModel(make_rows(names))
    model.apply(
        ev.PreflightDone(time=900.0,
                         total=len(names) + 1,
                         runnable=len(names),
                         skipped=0,
                         missing=1,
                         duplicates=0,
                         input_bytes=sum(row.input_size for row in model.rows.values()),
                         problems=((4, "/media/in/clip03b.mp4", "missing"), )))
    return model


def change(model: RunModel,
           job_id: int,
           state: JobState,
           time: float,
           *,
           reason: str = "",
           exit_code: int | None = None,
           signal: int | None = None,
           node: str = "local") -> None:
    """One JobStateChanged with the fields the core would fill in."""
    row = model.rows[job_id]
    model.apply(
        ev.JobStateChanged(time=time,
                           job_id=job_id,
                           name=row.name,
                           state=state,
                           previous=row.state,
                           attempt=max(row.attempt, 1),
                           node=node if state.active or state.finished else "",
                           pid=41000 + job_id if state.active else None,
                           exit_code=exit_code,
                           signal=signal,
                           reason=reason))


def run_job(model: RunModel,
            job_id: int,
            start: float,
            cpu: list[float],
            *,
            rss_mib: int = 180,
            progress_step: float = 0.04,
            speed: float | None = None,
            node: str = "local") -> None:
    """Start a job at `start` and feed one JobSample per second with the given CPU figures;
    with a `speed`, as ffmpeg's probe reports it (media fraction, fps, speed, time left)."""
    change(model, job_id, JobState.RUNNING, start, node=node)
    for step, cores in enumerate(cpu, 1):
        fraction = min(0.99, progress_step * step)
        probe = {} if speed is None else {
            "fps": 25 * speed,
            "speed": speed,
            "eta_seconds": (1 - fraction) / progress_step / speed,
            "progress_source": ev.ProgressSource.FFMPEG,
        }
        model.apply(
            ev.JobSample(time=start + step,
                         job_id=job_id,
                         node=node,
                         pid=41000 + job_id,
                         cpu_cores=cores,
                         rss_bytes=(rss_mib + 7 * (step % 5)) * MIB,
                         processes=2,
                         read_fraction=min(1.0, progress_step * step),
                         output_bytes=int(1.3 * MIB * step),
                         elapsed=float(step),
                         progress=fraction,
                         **probe))


def decision():
    """A real ScalingDecision: 0.92 cores per job on 8 cores at 80% lets CPU bind at 6."""
    profile = ProcessProfile(cpu_cores=0.92, rss_bytes=180 * MIB, output_bytes=40 * MIB)
    capacity = SystemCapacity(logical_cores=8, available_memory=12 * GIB, free_disk=200 * GIB)
    return profile, compute_limit(profile, capacity, jobs=12)


def system_sample(model: RunModel, *, disk_danger: bool) -> None:
    free = 30 * GIB if disk_danger else 180 * GIB
    model.apply(
        ev.SystemSample(time=NOW,
                        node="local",
                        logical_cores=8,
                        cpu_percent=71.0,
                        total_memory=16 * GIB,
                        available_memory=9 * GIB,
                        memory_reserve=int(3.2 * GIB),
                        free_disk=free,
                        disk_total=500 * GIB,
                        disk_reserve=20 * GIB,
                        projected_disk_use=12 * GIB))


def system_history(model: RunModel, start: float = 900.0) -> None:
    """A system sample a second from `start` to just before NOW: the load climbs as jobs
    launch, memory in use follows it, and the disk fills as outputs are written."""
    for second in range(int(NOW - start)):
        load = min(1.0, second / 60) * (0.85 + 0.1 * ((second * 7) % 5) / 4)
        model.apply(
            ev.SystemSample(time=start + second,
                            node="local",
                            logical_cores=8,
                            cpu_percent=5.0 + 80.0 * load,
                            total_memory=16 * GIB,
                            available_memory=int((14.5 - 5.5 * load) * GIB),
                            memory_reserve=int(3.2 * GIB),
                            free_disk=int((200 - 1.7 * second) * GIB),
                            disk_total=500 * GIB,
                            disk_reserve=20 * GIB,
                            projected_disk_use=12 * GIB))


def calibration_model(*, finished: bool) -> Script:
    """Job 1 measured through a 5 s window: 3 s in, or over with the limit decided."""
    model = new_model(NAMES)
    system_sample(model, disk_danger=False)
    change(model, 1, JobState.RUNNING, 994.0)
    model.apply(ev.CalibrationStarted(time=994.0, job_id=1, window=5.0))
    ticks = 20 if finished else 12
    for tick in range(1, ticks + 1):
        elapsed = tick * 0.25
        model.apply(
            ev.CalibrationProgress(time=994.0 + elapsed,
                                   job_id=1,
                                   elapsed=elapsed,
                                   window=5.0,
                                   cpu_cores=min(0.95, 0.2 + 0.09 * tick),
                                   rss_bytes=(60 + 8 * min(tick, 15)) * MIB,
                                   output_bytes=int(0.6 * MIB * tick),
                                   read_fraction=0.01 * tick,
                                   output_estimate=120 * MIB,
                                   output_basis=ev.OutputBasis.MEDIA_TIME))
    limit = 1
    if finished:
        profile, limits = decision()
        model.apply(
            ev.LimitChanged(time=999.0,
                            limit=limits.limit,
                            previous=1,
                            source=ev.LimitSource.WINDOW,
                            decision=limits))
        model.apply(
            ev.CalibrationFinished(time=999.0,
                                   profile=profile,
                                   decision=limits,
                                   source=ev.LimitSource.WINDOW))
        limit = limits.limit
    return Script(model, controller_for(model, limit, CalibrationStatus.PENDING))


def calibrated(model: RunModel):
    """The limit calibration set at 901 (`decision`'s), applied; its decision."""
    _profile, limits = decision()
    model.apply(
        ev.LimitChanged(time=901.0,
                        limit=limits.limit,
                        previous=1,
                        source=ev.LimitSource.WINDOW,
                        decision=limits))
    return limits


def run_model(names: Sequence[str] = NAMES) -> Script:
    """Mid-run: 2 succeeded, 1 failed, 1 killed, 3 running with sparklines, 1 paused, the rest
    queued; the disk gauge is in danger and the last notice is a missing input."""
    model = new_model(names)
    limits = calibrated(model)
    change(model, 1, JobState.RUNNING, 900.0)
    change(model, 1, JobState.SUCCEEDED, 960.0, exit_code=0)
    change(model, 2, JobState.RUNNING, 905.0)
    change(model, 2, JobState.SUCCEEDED, 975.0, exit_code=0)
    run_job(model, 3, 930.0, [0.3, 0.9, 0.95, 0.92, 0.5, 0.97, 0.93, 0.91, 0.94, 0.96], speed=1.52)
    run_job(model, 4, 950.0, [0.1, 0.4, 0.8, 0.9, 0.9, 0.88, 0.2, 0.9], rss_mib=240, speed=0.87)
    run_job(model, 5, 940.0, [0.5, 0.9, 0.9, 0.7, 0.9])
    change(model, 5, JobState.PAUSED, 990.0, reason="paused by operator")
    run_job(model, 6, 985.0, [0.6, 0.8, 0.95], progress_step=0.02)
    change(model, 7, JobState.RUNNING, 910.0)
    change(model, 7, JobState.FAILED, 935.0, reason="exit 1", exit_code=1)
    change(model, 8, JobState.RUNNING, 960.0)
    change(model, 8, JobState.KILLED, 970.0, reason="operator", signal=15)
    system_history(model)
    system_sample(model, disk_danger=True)
    model.apply(
        ev.Notice(time=902.0,
                  level=ev.NoticeLevel.WARNING,
                  message="input missing: /data/in/clip13.mp4 (list line 15)"))
    return Script(model, controller_for(model, limits.limit))


def cluster_model() -> Script:
    """Mid-run on three nodes of 8 cores and 16 GiB: node-a runs three jobs, node-b ran two
    until it was lost at 970 (one runs again on node-a), node-c failed three jobs in a row (no
    ffmpeg there) and was set aside; a sample a node a second, node-b's until it was lost (the
    charts start over then: the sums of two nodes do not compare with those of three)."""
    model = new_model(NAMES)
    limits = calibrated(model)
    change(model, 1, JobState.RUNNING, 900.0, node="node-a")
    change(model, 1, JobState.SUCCEEDED, 950.0, exit_code=0, node="node-a")
    change(model, 2, JobState.RUNNING, 900.0, node="node-b")
    change(model, 2, JobState.SUCCEEDED, 955.0, exit_code=0, node="node-b")
    for job_id in (6, 7, 8):
        change(model, job_id, JobState.RUNNING, 901.0 + job_id, node="node-c")
        change(model,
               job_id,
               JobState.FAILED,
               902.0 + job_id,
               exit_code=127,
               node="node-c",
               reason="exit 127")
    model.apply(
        ev.NodeStateChanged(time=915.0,
                            node="node-c",
                            state=ev.NodeState.QUARANTINED,
                            failures=3,
                            address="tls://10.0.0.13:40331"))
    change(model, 5, JobState.RUNNING, 958.0, node="node-b")
    run_job(model,
            3,
            930.0, [0.3, 0.9, 0.95, 0.92, 0.5, 0.97, 0.93, 0.91],
            speed=1.5,
            node="node-a")
    run_job(model, 4, 960.0, [0.1, 0.4, 0.8, 0.9, 0.9, 0.88], rss_mib=240, node="node-a")
    node_samples(model, 900, 970, ("node-a", "node-b", "node-c"))
    model.apply(
        ev.NodeStateChanged(time=970.0,
                            node="node-b",
                            state=ev.NodeState.LOST,
                            address="tls://10.0.0.12:40331"))
    change(model, 5, JobState.QUEUED, 970.0)
    run_job(model, 5, 975.0, [0.6, 0.8, 0.95], progress_step=0.02, node="node-a")
    node_samples(model, 970, 1000, ("node-a", "node-c"))
    return Script(model, controller_for(model, limits.limit))


def node_samples(model: RunModel, start: int, end: int, nodes: Sequence[str]) -> None:
    """A sample of each of `nodes` a second from `start` to `end` (excluded): node-a busy,
    node-b half as busy, node-c idle; the outputs fill the shared disk."""
    load = {"node-a": 0.45, "node-b": 0.3, "node-c": 0.02}
    for second in range(start, end):
        for node in nodes:
            model.apply(
                ev.SystemSample(time=float(second),
                                node=node,
                                logical_cores=8,
                                cpu_percent=100 * load[node] * min(1.0, (second - 900) / 30),
                                total_memory=16 * GIB,
                                available_memory=int((15 - 10 * load[node]) * GIB),
                                memory_reserve=int(6.4 * GIB),
                                free_disk=int((200 - 0.5 * (second - 900)) * GIB),
                                disk_total=500 * GIB,
                                disk_reserve=20 * GIB,
                                projected_disk_use=12 * GIB))


def finished_model(names: Sequence[str] = NAMES) -> Script:
    """Every job over: two failures (exit 1, SIGSEGV), one killed, a missing input."""
    model = new_model(names)
    bad = {
        7: (JobState.FAILED, "exit 1", 1, None),
        11: (JobState.FAILED, "signal SIGSEGV", None, 11),
        2: (JobState.KILLED, "operator", None, 15),
    }
    for job_id in model.order:
        start = 700.0 + 20 * job_id
        change(model, job_id, JobState.RUNNING, start)
        state, reason, code, sig = bad.get(job_id, (JobState.SUCCEEDED, "", 0, None))
        change(model, job_id, state, start + 45.0, reason=reason, exit_code=code, signal=sig)
    counts = {"succeeded": len(names) - 3, "failed": 2, "killed": 1, "missing": 1}
    model.apply(
        ev.RunFinished(time=NOW, counts=counts, wall_seconds=312.4, exit_code=1, interrupted=False))
    return Script(model, controller_for(model, 6))


def controller_for(model: ScriptModel,
                   limit: int,
                   calibration: CalibrationStatus = CalibrationStatus.SKIPPED) -> FakeController:
    """A fake host playing the model's script: its jobs (queued) on attach, then its events."""
    return FakeController(model.jobs,
                          model.events,
                          limit=limit,
                          calibration=calibration,
                          clock=fixed_clock)


def session_app(script: Script) -> OrchApp:
    """The app attached to the script's fake host; it opens the screen the events lead to."""
    return OrchApp(script.controller)


async def played(pilot) -> None:
    """Wait until the fake host delivered its events, then redraw from them."""
    controller = pilot.app.controller
    while not controller.delivered:
        await pilot.pause()
    await pilot.pause()
    refresh = getattr(pilot.app.screen, "refresh_view", None)
    if refresh is not None:
        refresh()
    await pilot.pause()


# --- config files ----------------------------------------------------------------------------


@pytest.fixture
def snap_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder under tmp_path that the config screen shows as SNAP_ROOT: the same text on
    every run and every machine, with nothing written outside the test's own folder."""
    shown = config_screen._show  # pylint: disable=protected-access

    def as_snap_root(path: Path | str) -> str:
        return shown(str(path).replace(str(tmp_path), str(SNAP_ROOT)))

    monkeypatch.setattr(config_screen, "_show", as_snap_root)
    return tmp_path


def fresh_dir(root: Path, name: str) -> Path:
    """root/name, created empty."""
    folder = root / name
    folder.mkdir(parents=True)
    return folder


CONFIG_TEMPLATE = """\
# Transcode every clip to 720p.
binary:
  path: bin/ffmpeg
  flags:
    - "-nostdin"
    - "-i"
    - "{{input_file}}"
    - "-vf"
    - "scale=1280:720"
    - "{{output_file}}"

directories:
  input_file_list: inputs.txt
  output_dir: out
  output_suffix: _720p

resources:
  cpu_fraction: {cpu_fraction}
  memory_fraction: 0.8
  disk_fraction: 0.8
  stabilization_seconds: 5

jobs:
  timeout: 3600
  retries: 1
"""


def write_config(folder: Path, *, cpu_fraction: str = "0.8") -> Path:
    """A fake ffmpeg, five inputs of fixed sizes, a list with a missing line and a duplicate."""
    (folder / "bin").mkdir()
    binary = folder / "bin" / "ffmpeg"
    binary.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    binary.chmod(0o755)
    (folder / "in").mkdir()
    names = NAMES[:5]
    for index, name in enumerate(names, 1):
        (folder / "in" / name).write_bytes(b"\0" * (250_000 * index))
    listed = [f"in/{name}" for name in names] + ["in/clip13.mp4", "in/clip02.mp4"]
    (folder / "inputs.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(CONFIG_TEMPLATE.format(cpu_fraction=cpu_fraction), encoding="utf-8")
    return config


DiskUsage = namedtuple("DiskUsage", "total used free")


@pytest.fixture
def fixed_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config summary shows free space: pin it, or every run of the suite differs."""
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda _path: DiskUsage(500 * GIB, 377 * GIB, 123 * GIB))


@pytest.fixture(autouse=True)
def colour_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """OrchApp reads NO_COLOR when created: a developer's NO_COLOR=1 must not change the SVGs."""
    monkeypatch.delenv("NO_COLOR", raising=False)


# --- the snapshots ---------------------------------------------------------------------------


@sizes
@pytest.mark.usefixtures("fixed_disk")
def test_config_summary(snap_compare, size, snap_root):
    config = write_config(fresh_dir(snap_root, "config-valid"))
    assert snap_compare(OrchApp(FakeController(started=False), config), terminal_size=size)


@sizes
@pytest.mark.usefixtures("fixed_disk")
def test_config_error_shows_the_yaml_with_the_bad_line_selected(snap_compare, size, snap_root):
    config = write_config(fresh_dir(snap_root, "config-error"), cpu_fraction="1.5")
    assert snap_compare(OrchApp(FakeController(started=False), config), terminal_size=size)


@sizes
def test_calibration_live(snap_compare, size):
    app = session_app(calibration_model(finished=False))
    assert snap_compare(app, terminal_size=size, run_before=played)


@sizes
def test_calibration_result(snap_compare, size):
    app = session_app(calibration_model(finished=True))
    assert snap_compare(app, terminal_size=size, run_before=played)


def serve_log(monkeypatch: pytest.MonkeyPatch, shown: Path, root: Path, text: str) -> None:
    """Write `text` as the log the detail screen shows at `shown` (under SNAP_ROOT): the
    screen reads it from under `root` (tmp_path) and shows the path it expects."""
    log = root / shown.relative_to(SNAP_ROOT)
    log.parent.mkdir(parents=True)
    log.write_text(text, encoding="utf-8")
    monkeypatch.setattr(detail_screen.os.path, "getsize",
                        lambda path: os.stat(log if Path(path) == shown else path).st_size)
    monkeypatch.setattr(
        detail_screen, "read_log",
        lambda path, offset, limit: read_log(log if Path(path) == shown else path, offset, limit))


def detail_of(script: Script, job_id: int):
    """A run_before that opens the detail of `job_id` once the script is played."""

    async def open_detail(pilot) -> None:
        await played(pilot)
        await pilot.app.push_screen(DetailScreen(pilot.app.model, script.controller, job_id))
        await pilot.pause()

    return open_detail


@run_sizes
def test_run_mixed_states_with_disk_in_danger(snap_compare, size):
    assert snap_compare(session_app(run_model()), terminal_size=size, run_before=played)


def test_run_on_three_nodes_one_set_aside_one_lost(snap_compare):
    assert snap_compare(session_app(cluster_model()), terminal_size=(120, 40), run_before=played)


@sizes
def test_detail_of_a_running_job_with_its_log(snap_compare, size, tmp_path, monkeypatch):
    script = run_model()
    serve_log(monkeypatch, script.model.rows[3].log_path, tmp_path, DETAIL_LOG)
    assert snap_compare(session_app(script), terminal_size=size, run_before=detail_of(script, 3))


def test_detail_of_a_finished_job_charts_its_whole_life(snap_compare, tmp_path, monkeypatch):
    """A job that ran 50 minutes: its 3000 samples are charted in HISTORY_POINTS points from
    its start (the CPU's early burst and the RSS peak at 40 minutes are still there)."""
    script = run_model()
    model = script.model
    change(model, 9, JobState.RUNNING, -2000.0)
    for second in range(1, 3001):
        model.apply(
            ev.JobSample(time=-2000.0 + second,
                         job_id=9,
                         node="local",
                         pid=41009,
                         cpu_cores=3.5 if second < 300 else 1.0 + (second % 600) / 600,
                         rss_bytes=(900 if second == 2400 else 200 + second // 30) * MIB,
                         processes=2,
                         read_fraction=second / 3000,
                         output_bytes=second * 40_000,
                         elapsed=float(second),
                         progress=min(0.99, second / 3000)))
    change(model, 9, JobState.SUCCEEDED, 1000.0, exit_code=0)
    script = Script(model, controller_for(model, decision()[1].limit))  # the script grew
    serve_log(monkeypatch, model.rows[9].log_path, tmp_path, "encoded 3000 s of video\n")
    assert snap_compare(session_app(script),
                        terminal_size=(120, 40),
                        run_before=detail_of(script, 9))


@sizes
def test_finished_with_failures(snap_compare, size):
    assert snap_compare(session_app(finished_model()), terminal_size=size, run_before=played)


@sizes
def test_help_modal(snap_compare, size):
    app = session_app(run_model())
    assert snap_compare(app, terminal_size=size, press=["question_mark"], run_before=played)


@sizes
def test_quit_modal(snap_compare, size):
    assert snap_compare(session_app(run_model()),
                        terminal_size=size,
                        press=["q"],
                        run_before=played)


@sizes
def test_kill_confirm_modal(snap_compare, size):
    app = session_app(run_model())
    # The cursor starts on job 1 (succeeded); job 3 is running.
    assert snap_compare(app, terminal_size=size, press=["down", "down", "x"], run_before=played)


@sizes
def test_markup_in_names_renders_literally_on_the_run_screen(snap_compare, size):
    script = run_model(NASTY + NAMES[3:])
    assert snap_compare(session_app(script), terminal_size=size, run_before=played)


@sizes
def test_markup_in_names_renders_literally_on_the_finished_screen(snap_compare, size):
    # Jobs 2, 7 and 11 end badly, so all three names are in the failure list.
    names = [NAMES[0], NASTY[0], *NAMES[2:6], NASTY[1], *NAMES[7:10], NASTY[2], NAMES[11]]
    script = finished_model(names)
    assert snap_compare(session_app(script), terminal_size=size, run_before=played)
