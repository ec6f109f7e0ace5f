"""LocalRunner: a job starts as from a shell, and is reaped once it has exited, never while it
runs."""

# pylint: disable=missing-function-docstring  # each test's name says what it checks
# pylint: disable=protected-access  # the pidfd the runner holds is what the tests reach for
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from orch_tui.core.local_runner import LocalRunner
from orch_tui.core.runner import ExitStatus
from tests.helpers import alive, eventually, write_workspace

#: Says what signals it ignores and blocks (grep, not a shell: a shell resets its own mask).
STATE = ["-h", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]

#: Exits at once for `quick.bin`, runs for a minute otherwise.
SCRIPT = "import sys, time; time.sleep(0 if sys.argv[1].endswith('quick.bin') else 60)"


async def test_a_live_job_is_not_reaped_when_its_pidfd_number_was_a_spawned_childs_too(tmp_path):
    """A child just spawned holds a copy of every descriptor until its exec closes them. A job's
    pidfd closed meanwhile stayed in the epoll set under its number, readable (that job had
    exited), and the next job given the same number was reaped alive: SIGKILLed and reported so.
    A copy held here plays the child that has not reached its exec yet."""
    ws = write_workspace(tmp_path, ["quick.bin", "slow.bin"],
                         binary=sys.executable,
                         flags=["-c", SCRIPT, "{input_file}"])
    plan = ws.plan()
    quick, slow = plan.jobs
    exits: dict[int, ExitStatus] = {}
    runner = LocalRunner(plan.config.directories.output_dir)
    held = -1
    try:
        await runner.start(quick, exits.__setitem__)
        number = runner._children[quick.job_id].pidfd
        held = os.dup(number)
        await eventually(lambda: quick.job_id in exits, "the quick job's reap")
        started = await runner.start(slow, exits.__setitem__)
        assert runner._children[slow.job_id].pidfd == number, "the number is given again"
        runner._on_exits()  # what the loop runs when the set is readable
        assert slow.job_id not in exits, f"a running job was reaped: {exits[slow.job_id]}"
        assert alive(started.pid)
    finally:
        if held >= 0:
            os.close(held)
        runner.kill_all()
        await eventually(lambda: len(exits) == 2 or not runner._children, "the kill's reap")
        runner.close()
    assert exits[quick.job_id].ok


async def test_a_closed_runner_closes_its_epoll_set_once_its_last_killed_job_is_reaped(tmp_path):
    ws = write_workspace(tmp_path, ["slow.bin"],
                         binary=sys.executable,
                         flags=["-c", SCRIPT, "{input_file}"])
    plan = ws.plan()
    exits: dict[int, ExitStatus] = {}
    runner = LocalRunner(plan.config.directories.output_dir)
    await runner.start(plan.jobs[0], exits.__setitem__)
    runner.close()  # kills it; its reap is still to come
    assert not runner._exits.closed
    await eventually(lambda: exits, "the killed job's reap")
    assert exits[1].signal is not None
    assert runner._exits.closed


async def run_alone(
    tmp_path: Path, binary: str, flags: list[str],
    blocked: frozenset[int] = frozenset()) -> tuple[ExitStatus, str]:
    """One job of `binary flags` to its end, started with `blocked` blocked in this thread (its
    parent's doing): its exit and its log."""
    plan = write_workspace(tmp_path, ["a.bin"], binary=binary, flags=flags).plan()
    exits: dict[int, ExitStatus] = {}
    runner = LocalRunner(plan.config.directories.output_dir)
    blocked_here = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        await runner.start(plan.jobs[0], exits.__setitem__)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked_here)
    try:
        await eventually(lambda: exits, "the job's end")
    finally:
        runner.close()
    return exits[plan.jobs[0].job_id], plan.jobs[0].log_path.read_text()


async def test_a_job_starts_with_the_signal_dispositions_a_shell_would_give_it(tmp_path):
    """Python ignores SIGPIPE and SIGXFSZ from its start, and a posix_spawn child inherits that:
    `yes | head -1` in a job then wrote into EPIPE, and a job past RLIMIT_FSIZE into EFBIG,
    instead of being killed by the signal as from a shell. A mask orch-tui was started with was
    inherited too: a blocked SIGTERM made every kill wait for the SIGKILL."""
    assert signal.getsignal(signal.SIGPIPE) is signal.SIG_IGN  # the state the job must not get
    # Started with SIGTERM and SIGHUP blocked: the job must not inherit it.
    status, log = await run_alone(tmp_path,
                                  "/bin/grep", [*STATE, "{input_file}"],
                                  blocked=frozenset({signal.SIGTERM, signal.SIGHUP}))
    assert status.ok
    lines = dict(line.split(":\t") for line in log.splitlines() if line.startswith("Sig"))
    ignored, blocked = int(lines["SigIgn"], 16), int(lines["SigBlk"], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert not ignored & 1 << (sig - 1), f"{signal.Signals(sig).name} is ignored in the job"
        assert not blocked & 1 << (sig - 1), f"{signal.Signals(sig).name} is blocked in the job"


async def test_a_pipe_in_a_job_ends_its_writer_with_sigpipe_as_in_a_terminal(tmp_path):
    """What the dispositions mean for a job script: `yes | head -n1` ends `yes` by SIGPIPE,
    silently. With SIGPIPE ignored, `yes` wrote into EPIPE and said so in the job's log (a
    writer that does not check its writes would never end at all)."""
    status, log = await run_alone(tmp_path, "/bin/sh",
                                  ["-c", "yes | head -n1 >/dev/null; echo finished", "job"])
    assert status.ok
    assert log == "finished\n"


async def test_a_job_s_peak_memory_is_its_own_never_the_orchestrator_s(tmp_path):
    """A posix_spawn child shares this process's memory until its exec, and wait4 reports that
    memory's high-water mark as the child's: `true` came back as big as the test process.
    128 MiB held here make the difference plain; a job that touches 400 MiB reports it."""
    ballast = bytearray(128 * 1024 * 1024)  # touched: it counts in this process's RSS
    ballast[::4096] = b"x" * len(ballast[::4096])
    small, _log = await run_alone(tmp_path / "small", "/bin/true", ["{input_file}"])
    assert small.ok and small.max_rss_bytes == 0, "unknown, not the orchestrator's figure"
    script = "import sys; b = bytearray(400 << 20); b[::4096] = b'x' * len(b[::4096])"
    big, _log = await run_alone(tmp_path / "big", sys.executable, ["-c", script, "{input_file}"])
    assert big.ok and big.max_rss_bytes >= 400 << 20
    del ballast
