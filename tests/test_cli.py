"""The command line as an operator uses it: a real `orch-tui` process, its output and exit code."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import CMD, alive, kill_quietly, run_cli


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("orch-tui ")


def test_headless_run_prints_preflight_calibration_progress_and_summary(workspace):
    ws = workspace(4, worker_args=["--seconds", "0.3"])
    result = run_cli("--config", str(ws.config), "--headless")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "preflight: 4 inputs" in out
    assert "calibration" in out and "=> limit" in out and "binds" in out
    assert "done: 4 succeeded, 0 failed, 0 killed, 0 skipped, 0 missing" in out
    assert "(exit 0)" in out


def test_not_a_terminal_means_headless(workspace):
    ws = workspace(1)
    result = run_cli(str(ws.config))
    assert result.returncode == 0
    assert "done: 1 succeeded" in result.stdout


@pytest.mark.parametrize("flag", ["--jobs", "-j", "--max-procs"])
def test_jobs_sets_a_fixed_count_under_every_spelling(workspace, flag):
    ws = workspace(3)
    result = run_cli(str(ws.config), "--headless", flag, "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\nlimit: 2 (--jobs)\n" in result.stdout and "calibrating" not in result.stdout


def test_help_tells_jobs_from_max_processes():
    text = " ".join(run_cli("--help").stdout.split())
    assert "-j N, --jobs N, --max-procs N" in text
    assert "resources.max_processes, by contrast, only caps the calibrated limit" in text
    assert "seed" not in text


def test_failures_give_exit_1_and_name_the_log(workspace):
    ws = workspace(2, worker_args=["--exit", "4"])
    result = run_cli(str(ws.config), "--max-procs", "2")
    assert result.returncode == 1
    assert "FAILED #1 clip01.bin: exit 4 (log: " in result.stdout
    assert "2 failed" in result.stdout


def test_a_second_run_skips_what_is_done(workspace):
    ws = workspace(2)
    assert run_cli(str(ws.config), "--max-procs", "1").returncode == 0
    again = run_cli(str(ws.config), "--max-procs", "1")
    assert again.returncode == 0
    assert "0 to run, 2 already done" in again.stdout


def test_dry_run_prints_shell_quoted_commands_and_runs_nothing(workspace):
    ws = workspace(["a b.mp4", "it's;$(x).mp4", "-rf.mp4"])
    result = run_cli("--dry-run", str(ws.config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    argvs = [shlex.split(line) for line in lines]
    assert argvs[1][-2] == str(ws.root / "in" / "it's;$(x).mp4")
    assert argvs[1][-1] == str(ws.output_dir / "it's;$(x)_out.mp4")
    assert argvs[2][-2].startswith("/")
    assert not ws.output_dir.exists()


@pytest.mark.skipif(shutil.which("bash") is None, reason="the check pastes into bash")
def test_dry_run_lines_paste_back_into_bash_as_the_exact_argv(workspace):
    """A tab, a no-break space, an escape and a newline in names and flags: each line is safe on
    a terminal (it prints nothing that does not print) and bash turns it back into the very
    bytes the job gets (`printable` alone wrote `a\\tb` inside single quotes: a backslash and a
    `t` for a shell)."""
    names = ["a\tb.mp4", "c\u00a0d.mp4", "e\x1b[31mf.mp4"]
    ws = workspace(names)
    config = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(config.replace('"{input_file}"', '"it\'s\\n2", "{input_file}"'),
                         encoding="utf-8")
    result = run_cli("--dry-run", str(ws.config))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.isprintable() for line in lines)
    for name, line in zip(names, lines):
        pasted = subprocess.run(["bash", "-c", f"printf '%s\\0' {line}"],
                                capture_output=True,
                                check=True).stdout.split(b"\0")[:-1]
        stem, ext = os.path.splitext(name)
        assert pasted[-3:] == [
            os.fsencode(word) for word in
            ["it's\n2",
             str(ws.root / "in" / name),
             str(ws.output_dir / f"{stem}_out{ext}")]
        ]


def test_config_error_is_one_line_exit_2_no_traceback(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "binary:\n  path: /bin/true\n  flgs: ['{input_file}']\n"
        "directories:\n  input_file_list: list.txt\n  output_dir: out\n",
        encoding="utf-8")
    result = run_cli(str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{config}:3:3: binary.flgs" in lines[0] and "did you mean 'flags'" in lines[0]


@pytest.mark.parametrize("args", [[], ["--max-procs", "0"], ["--max-procs", "x"], ["--bogus"]])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def _start(ws, *extra):
    return subprocess.Popen(  # pylint: disable=consider-using-with
        [*CMD, str(ws.config), "--headless", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True)


def _wait_for_pids(pidfile, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pidfile.exists():
            pids = [int(p) for p in pidfile.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.05)
    raise AssertionError("jobs did not start")


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_stop_every_job_and_exit_128_plus_signal(workspace, tmp_path, signum,
                                                                    code):
    pidfile = tmp_path / "pids"
    ws = workspace(
        4, worker_args=["--seconds", "60", "--grandchildren", "1", "--pidfile",
                        str(pidfile)])
    proc = _start(ws, "--max-procs", "2")
    pids = []
    try:
        pids = _wait_for_pids(pidfile, 4)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == code
        assert "interrupted:" in out and "2 killed" in out
        assert f"(exit {code})" in out.splitlines()[-1], "the summary gives the real exit code"
        deadline = time.monotonic() + 3
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(p) for p in pids)
        leftovers = [p.name for p in ws.output_dir.iterdir() if p.name != ".orch-tui"]
        assert leftovers == [], "temporary outputs are removed"
    finally:
        proc.kill()
        kill_quietly(pids)


def test_sighup_does_not_stop_the_run(workspace, tmp_path):
    pidfile = tmp_path / "pids"
    ws = workspace(2, worker_args=["--seconds", "1.5", "--pidfile", str(pidfile)])
    proc = _start(ws, "--max-procs", "2")
    try:
        _wait_for_pids(pidfile, 2)
        proc.send_signal(signal.SIGHUP)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
        log = (ws.output_dir / ".orch-tui" / "run.log").read_text(encoding="utf-8")
        assert "SIGHUP" in log and "done: 2 succeeded" in log
    finally:
        proc.kill()


def test_core_imports_without_textual():
    code = ("import sys; sys.modules['textual'] = None\n"
            "import orch_tui.cli, orch_tui.headless\n"
            "import orch_tui.core.orchestrator, orch_tui.core.local_runner, orch_tui.core.config\n"
            "assert not [m for m in sys.modules if m.startswith('textual') and sys.modules[m]]\n")
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True,
                            text=True,
                            check=False,
                            env={
                                **os.environ, "PYTHONPATH": os.getcwd()
                            })
    assert result.returncode == 0, result.stderr
