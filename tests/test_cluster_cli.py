"""Cluster runs from the command line, on the real two-node cluster (tests/cluster_fixture.py):
`--cluster` and `cluster.address`, the joblog's Host column, the seed's ffmpeg example across
both nodes, bad addresses, an unreachable scheduler, and a local run that never loads
distributed."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from orch_tui import cli
from tests.cluster_fixture import NODES, Cluster
from tests.helpers import CMD, process_state, run_cli, signal_in_mask, write_workspace
from tests.tmux import wait_until


def joblog_hosts(path) -> list[str]:
    """The Host column of a joblog, one entry per job."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[1] for line in lines]


def test_a_run_with_cluster_address_in_the_config_names_each_jobs_node(dask_cluster, tmp_path):
    dask_cluster.ensure_nodes()
    ws = write_workspace(dask_cluster.shared / "cli", 4, worker_args=["--seconds", "1"])
    config = json.loads(ws.config.read_text(encoding="utf-8"))
    config["cluster"] = {"address": dask_cluster.address}
    ws.config.write_text(json.dumps(config), encoding="utf-8")
    joblog = tmp_path / "joblog"
    result = run_cli(str(ws.config), "--headless", "--joblog", str(joblog), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in ws.inputs:
        output = ws.output_dir / f"{path.stem}_out.bin"
        assert output.read_bytes() == path.read_bytes()
    hosts = joblog_hosts(joblog)
    assert len(hosts) == 4 and set(hosts) <= set(NODES), hosts


@pytest.mark.ffmpeg
@pytest.mark.skipif(not shutil.which("ffmpeg"),
                    reason="ffmpeg not installed (apt-get install "
                    "ffmpeg; .ci/run installs it)")
def test_the_seed_ffmpeg_example_runs_across_both_nodes(dask_cluster, tmp_path):
    # pylint: disable-next=import-outside-toplevel  # the local e2e test's helpers, reused
    from tests.test_ffmpeg_e2e import make_clip, probe
    dask_cluster.ensure_nodes()
    root = dask_cluster.shared / "ffmpeg"
    data = root / "data"
    data.mkdir(parents=True)
    names = ["video1.mp4", "video2.mp4", "my holiday (2).mp4", "video4.mp4"]
    for name in names:
        make_clip(data / name, seconds=2)
    (root / "inputs.txt").write_text("".join(f"{data / n}\n" for n in names), encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(json.dumps({
        "binary": {
            "path": "ffmpeg",
            "flags": ["-i", "{input_file}", "-vf", "scale=1280:720", "{output_file}"]
        },
        "directories": {
            "input_file_list": str(root / "inputs.txt"),
            "output_dir": str(root / "output"),
            "output_suffix": "_720p"
        },
        "resources": {
            "stabilization_seconds": 1
        },
    }),
                      encoding="utf-8")
    joblog = tmp_path / "joblog"
    result = run_cli(str(config),
                     "--headless",
                     "--cluster",
                     dask_cluster.address,
                     "--joblog",
                     str(joblog),
                     timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    produced = sorted(p.name for p in (root / "output").iterdir() if p.is_file())
    assert produced == sorted(n.replace(".mp4", "_720p.mp4") for n in names)
    for name in produced:
        assert probe(root / "output" / name) == (1280, 720)
    assert set(joblog_hosts(joblog)) == set(NODES)
    logs = list((root / "output" / ".orch-tui" / "logs").rglob("*.log"))
    assert len(logs) == 4 and all("Output #0" in log.read_text(encoding="utf-8") for log in logs)


@pytest.mark.parametrize("address", ["http://render1:8786", "tcp://render1", "tcp://:8786"])
def test_a_bad_cluster_address_is_one_line_and_exit_2(workspace, address):
    ws = workspace(1)
    result = run_cli(str(ws.config), "--headless", "--cluster", address)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("orch-tui: error: --cluster:")
    assert "Traceback" not in result.stderr
    config = json.loads(ws.config.read_text(encoding="utf-8"))
    config["cluster"] = {"address": address}
    ws.config.write_text(json.dumps(config), encoding="utf-8")
    result = run_cli(str(ws.config), "--headless")
    assert result.returncode == 2
    line, = result.stderr.strip().splitlines()
    assert "cluster.address" in line and str(ws.config) in line


def test_an_unreachable_scheduler_is_one_line_and_nothing_runs(workspace):
    ws = workspace(1)
    with socket.socket() as probe_socket:  # a port nothing listens on (closed right away)
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    result = run_cli(str(ws.config),
                     "--headless",
                     "--cluster",
                     f"tcp://127.0.0.1:{port}",
                     timeout=90)
    assert result.returncode == 2, result.stdout + result.stderr
    last, = result.stderr.strip().splitlines()  # one line: no traceback, no warning
    assert last.startswith(f"orch-tui: error: cannot reach the Dask scheduler at tcp://127.0.0.1:"
                           f"{port}"), result.stderr
    assert "Traceback" not in result.stderr
    assert not any(ws.output_dir.glob("*_out.bin"))


def test_a_listener_that_never_answers_is_one_line_and_sigterm_ends_the_wait(workspace):
    """A port that accepts (the kernel's backlog, nobody reading) but is no Dask scheduler:
    the run hung for good, deaf to SIGTERM. Now it says so within the connect timeout, and a
    SIGTERM while it waits ends the run at once with 143."""
    ws = workspace(1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        result = run_cli(str(ws.config), "--headless", "--cluster", address, timeout=90)
        assert result.returncode == 2, result.stdout + result.stderr
        last, = result.stderr.strip().splitlines()
        assert last.startswith(f"orch-tui: error: cannot reach the Dask scheduler at {address}: "
                               "no answer in 10 s"), result.stderr
        # pylint: disable-next=consider-using-with  # killed and waited for in the finally
        proc = subprocess.Popen([*CMD, str(ws.config), "--headless", "--cluster", address],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL,
                                text=True)
        try:
            wait_until(lambda: signal_in_mask(proc.pid, "SigCgt", signal.SIGTERM),
                       timeout=30,
                       what="the run waiting for the scheduler, its SIGTERM handler in place")
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=8)  # well before the 10 s connect timeout
        finally:
            proc.kill()
    assert proc.returncode == 143, out + err
    assert "Traceback" not in err


def test_a_local_run_never_imports_distributed(workspace):
    ws = workspace(2)
    code = ("import sys; from orch_tui import cli; code = cli.main([sys.argv[1], '--headless']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('distributed', 'dask') "
            "or m.startswith('orch_tui.cluster'))); sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", code, str(ws.config)],
                            capture_output=True,
                            text=True,
                            timeout=60,
                            stdin=subprocess.DEVNULL,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_scheduler_that_goes_away_stops_the_run_with_one_error(tmp_path, workspace):
    """A cluster of its own (one node): the scheduler is SIGKILLed while a job runs. The run
    launches nothing more, says why and exits non-zero (a rerun of the same command resumes
    from the journal, as after any failure); the node, left without a scheduler, leaves no job
    of it behind."""
    cluster = Cluster(tmp_path / "cluster", names=("solo", ))
    ws = workspace(3, worker_args=["--seconds", "20", "--pidfile", str(tmp_path / "pids")])
    try:
        cluster.start()
        # pylint: disable-next=consider-using-with  # waited for below
        run = subprocess.Popen(
            [*CMD, str(ws.config), "--headless", "--jobs", "1", "--cluster", cluster.address],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True)
        wait_until((tmp_path / "pids").exists, 60, "the first job to start")
        assert cluster.scheduler is not None
        cluster.scheduler.kill()
        out, err = run.communicate(timeout=60)
        assert run.returncode == 1, out + err
        assert "lost the Dask scheduler" in out + err
        # Said once: the next job's refused start added a second error naming it, saying the
        # running jobs finish (they are given up).
        errors = [line for line in out.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "given up" in errors[0], out
        # The job's own line says it was given up, not that it died of a signal it never got.
        assert "given up: its runner lost it" in out and "SIGKILL" not in out, out
        assert "Traceback" not in out + err, err
        assert len((tmp_path / "pids").read_text(encoding="utf-8").splitlines()) == 1
    finally:
        cluster.stop()
    for line in (tmp_path / "pids").read_text(encoding="utf-8").splitlines():
        wait_until(lambda line=line: process_state(int(line.split()[0])) is None,
                   30,
                   "the job's process to be gone (its node left)")


def test_a_driver_killed_by_sigkill_leaves_no_job_on_the_nodes(dask_cluster, tmp_path):
    """Locally the guardian kills the jobs of a dead run; on a cluster the scheduler lets go of
    a dead client's tasks and the node's plugin kills their jobs."""
    dask_cluster.ensure_nodes()
    pidfile = tmp_path / "pids"
    ws = write_workspace(dask_cluster.shared / "driver",
                         2,
                         worker_args=["--seconds", "60", "--pidfile",
                                      str(pidfile)])
    # pylint: disable-next=consider-using-with  # killed and waited for below
    run = subprocess.Popen(
        [*CMD, str(ws.config), "--headless", "--jobs", "2", "--cluster", dask_cluster.address],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: pidfile.exists() and len(pidfile.read_text().splitlines()) == 2, 60,
                   "both jobs to start")
    finally:
        run.kill()
        run.wait()
    pids = [int(line.split()[0]) for line in pidfile.read_text(encoding="utf-8").splitlines()]
    wait_until(lambda: all(process_state(pid) in (None, "Z") for pid in pids), 15,
               "the dead driver's jobs to be killed on their nodes")


def test_a_run_started_on_the_operators_behalf_keeps_the_cluster(workspace):
    """The TUI and --detach start the run in a process of its own with run_flags, and the exit
    summary's resume command repeats them: both keep --cluster."""
    ws = workspace(1)
    args = cli.build_parser().parse_args([str(ws.config), "--cluster", "tcp://render1:8786"])
    assert cli.run_flags(args)[-2:] == ["--cluster", "tcp://render1:8786"]
    assert "--cluster" in cli.run_flags(args, resume=True)
    assert cli.options_from(args, []).runner is not None
    local = cli.build_parser().parse_args([str(ws.config)])
    assert "--cluster" not in cli.run_flags(local)
    assert cli.options_from(local, [], ws.plan()).runner is None
