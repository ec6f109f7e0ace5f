"""The `orch-tui` command line: parse, validate, then hand the run to an observer.

Every bad input ends here as one line on stderr and exit code 2; a run ends with 0 (all done),
1 (something failed, was killed or missing), 130/143 (SIGINT/SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from orch_tui import attach, subcommands, version_line
from orch_tui.background import (ReadyPipe, detached_message, leave_terminal, spawn_run,
                                 stderr_to_run_log)
from orch_tui.core.config import Config, address_problem, load_config
from orch_tui.core.control.remote import RemoteRun, live_run
from orch_tui.core.controller import Launch, LoadProgress, Starting
from orch_tui.core.errors import OrchError, UsageError
from orch_tui.core.events import RunFinished
from orch_tui.core.host import RunHost
from orch_tui.core.plan import Plan, load_plan, shell_quote
from orch_tui.core.session import RunnerFactory, RunOptions
from orch_tui.core.statedir import StateDir
from orch_tui.core.textutil import printable
from orch_tui.headless import HeadlessReporter, RunLog
from orch_tui.subcommands.common import job_count
from orch_tui.tui.settings import SettingsFile

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM
EXIT_SIGPIPE = 128 + signal.SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the README's CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="orch-tui",
        description="Run one command over many input files, as many at once as the machine "
        "safely allows (calibrated from a measured test run).",
        epilog="Subcommands (OUTPUT_DIR or its CONFIG; see orch-tui SUBCOMMAND --help): attach "
        "(the run screen on a live run), status [--json], wait [--timeout S], "
        "pause|resume|kill|requeue JOB..., limit N, stop; node SCHEDULER_ADDRESS (this machine "
        "joins a cluster). "
        "Exit codes: 0 all jobs succeeded or were already done; 1 a job failed, was "
        "killed or its input was missing; 2 config or usage error; 130/143 after SIGINT/SIGTERM.")
    parser.add_argument("config_path", nargs="?", metavar="CONFIG", help="the YAML config file")
    parser.add_argument("--config",
                        dest="config_flag",
                        metavar="CONFIG",
                        help="the YAML config file (the original spelling)")
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no TUI: print progress lines (automatic when stdout is not a terminal)")
    parser.add_argument("--detach",
                        action="store_true",
                        help="check the config here, then run with no terminal (progress to "
                        "OUTPUT_DIR/.orch-tui/run.log) and print the pid and how to attach")
    # The run process started by --detach and by the TUI reports on this descriptor.
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dry-run",
                        action="store_true",
                        help="print each expanded command, shell-quoted, one a line; run nothing")
    parser.add_argument("-j",
                        "--jobs",
                        "--max-procs",
                        dest="max_procs",
                        type=job_count,
                        metavar="N",
                        help="run exactly N jobs at once: no calibration, no learning "
                        "(resources.max_processes, by contrast, only caps the calibrated limit); "
                        "--max-procs is the older name")
    parser.add_argument("--adaptive",
                        action="store_true",
                        help="while cpu limits the calibrated limit, try one job more and keep it "
                        "when the measured rate of work rises by 5%% (resources.adaptive)")
    parser.add_argument("--overwrite",
                        action="store_true",
                        help="run jobs whose output already exists (default: skip them)")
    parser.add_argument("--fresh",
                        action="store_true",
                        help="ignore the journal: a new run (existing outputs still count as "
                        "done unless --overwrite)")
    parser.add_argument("--recalibrate",
                        action="store_true",
                        help="measure again instead of using the figures a previous run learned")
    parser.add_argument("--joblog",
                        metavar="FILE",
                        help="also write GNU parallel's joblog format to FILE")
    parser.add_argument("--demo",
                        nargs="?",
                        const="orch-tui-demo",
                        metavar="DIR",
                        help="write a demo workspace in DIR (default ./orch-tui-demo) and run it")
    parser.add_argument(
        "--yes",
        action="store_true",
        help="TUI: skip the config screen and start at once when the config is valid")
    parser.add_argument("--quiet",
                        action="store_true",
                        help="TUI: no bell and no desktop notification when the run ends")
    parser.add_argument("--cluster",
                        metavar="ADDRESS",
                        help="run every job on the Dask cluster whose scheduler is at ADDRESS "
                        "(tcp://HOST:8786; cluster.address in the config; needs orch-tui[cluster] "
                        "and `orch-tui node ADDRESS` on each machine)")
    parser.add_argument("--version", action="version", version=version_line())
    return parser


def use_tui(args: argparse.Namespace) -> bool:
    """The TUI unless asked not to, or when stdout is not a terminal (scripts, pipes, nohup)."""
    if args.headless or args.dry_run or args.detach or args.ready_fd is not None:
        return False
    return sys.stdout.isatty() and sys.stdin.isatty()


def _config_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path | None:
    if args.config_path and args.config_flag and args.config_path != args.config_flag:
        parser.error("give the config once: either CONFIG or --config CONFIG")
    path = args.config_path or args.config_flag
    if args.demo is not None:
        if path:
            parser.error("--demo writes its own config; do not give one")
        # pylint: disable-next=import-outside-toplevel
        from orch_tui.demo.workspace import write_demo_workspace
        try:
            config = write_demo_workspace(Path(args.demo))
        except (ValueError, OSError) as exc:
            parser.error(f"--demo {args.demo}: {exc}")
        print(f"demo workspace: {config.parent}", file=sys.stderr)
        return config
    if not path:
        if use_tui(args):
            return None  # the TUI opens its file picker
        parser.error("a config file is required: orch-tui CONFIG (or --config CONFIG)")
    return Path(path)


def print_dry_run(plan: Plan, out: TextIO) -> None:
    """Each command exactly as it would run (final output names), shell-quoted, one a line."""
    for entry in plan.inputs.problems:
        print(
            f"orch-tui: warning: input {entry.problem}: {printable(str(entry.path))} "
            f"(line {entry.line})",
            file=sys.stderr)
    for spec in plan.jobs:
        out.write(shell_quote(spec.display_argv) + "\n")


def dry_run(plan: Plan) -> int:
    """`--dry-run`: the commands on stdout. With stdout closed there is nothing to print to
    (exit 0); into a pipe closed early (`| head -1`) it stops quietly with 141, as a program
    killed by SIGPIPE would, instead of a traceback."""
    out = sys.stdout
    if out is None:
        return EXIT_OK
    try:
        print_dry_run(plan, out)
        out.flush()
    except BrokenPipeError:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, out.fileno())  # the exit-time flush must not fail again
        os.close(null)
        return EXIT_SIGPIPE
    return EXIT_OK


def open_run_log(state: StateDir) -> TextIO:
    """`<output_dir>/.orch-tui/run.log` for appending: private, never through a planted link;
    /dev/null when even that fails (a full disk must not stop the run)."""
    try:
        fd = state.open_file("run.log", os.O_WRONLY | os.O_APPEND)
    except (OSError, OrchError):
        # pylint: disable-next=consider-using-with  # the reporter owns and closes it
        return open(os.devnull, "w", encoding="utf-8")
    return RunLog(fd)


def options_from(args: argparse.Namespace,
                 argv: list[str] | None,
                 plan: Plan | None = None) -> RunOptions:
    """The run options the command line asked for (with `plan`, its config's cluster too)."""
    address = getattr(args, "cluster", None) or (plan.config.cluster.address if plan else None)
    return RunOptions(runner=cluster_runner(address) if address else None,
                      max_procs=args.max_procs,
                      overwrite=args.overwrite,
                      fresh=args.fresh,
                      recalibrate=args.recalibrate,
                      joblog=Path(args.joblog).absolute() if args.joblog else None,
                      adaptive=args.adaptive,
                      argv=tuple(word for word in (sys.argv if argv is None else argv)
                                 if not word.startswith("--ready-fd")))


def cluster_runner(address: str) -> RunnerFactory:
    """The cluster backend for `address`: imported here only, so a local run never loads
    `distributed`."""
    try:
        # pylint: disable-next=import-outside-toplevel  # distributed only for a cluster run
        from orch_tui.cluster.runner import runner_factory
    except ImportError as exc:
        raise UsageError(f"--cluster needs the cluster extra ({exc.name} is missing): "
                         "pip install 'orch-tui[cluster]'") from None
    return runner_factory(address)


def run_flags(args: argparse.Namespace, *, resume: bool = False) -> list[str]:
    """The command-line flags that shape a run: every one, for the run process started on its
    behalf; with `resume`, those a rerun that finishes the work left repeats (never
    --overwrite or --fresh: they would redo the work done; nor --recalibrate)."""
    flags = []
    if args.max_procs is not None:
        flags += ["--jobs", str(args.max_procs)]
    if args.joblog:
        flags += ["--joblog", str(Path(args.joblog).absolute())]
    if getattr(args, "cluster", None):
        flags += ["--cluster", args.cluster]
    switches = [("--adaptive", args.adaptive)]
    if not resume:
        switches += [("--overwrite", args.overwrite), ("--fresh", args.fresh),
                     ("--recalibrate", args.recalibrate)]
    return flags + [flag for flag, on in switches if on]


def headless_reporter(host: RunHost, stream: TextIO | None) -> HeadlessReporter:
    """A reporter writing to `stream`, to run.log once that cannot take lines."""

    def fallback() -> TextIO:
        assert host.state is not None
        return open_run_log(host.state)

    return HeadlessReporter(stream, fallback=fallback)


def report_launch(reporter: HeadlessReporter, launch: Launch) -> None:
    """What starting told the operator beyond warnings: where the journal went, what resuming
    contributed."""
    for line in (launch.where, launch.resume):
        if line:
            reporter.write(line)


async def run_headless(plan: Plan,
                       options: RunOptions,
                       *,
                       stream: TextIO | None = None,
                       ready: ReadyPipe | None = None) -> int:
    """Run the plan with the headless reporter; signals stop it cleanly, SIGHUP does not.
    With `ready` this is a run in a process of its own: progress goes to run.log and the
    process that started it is told once the run and its control socket are up."""
    loop = asyncio.get_running_loop()
    host = RunHost(options)
    try:
        launch = host.start(plan)
    except OrchError as exc:
        if ready is None:
            raise
        ready.refused(exc)
        return exc.exit_code
    if ready is not None:
        assert host.state is not None
        stream = open_run_log(host.state)
    if launch.notice:
        print(f"orch-tui: warning: {printable(launch.notice)}", file=stream or sys.stderr)
    reporter = headless_reporter(host, stream)
    reporter.adopt(host.attach(reporter))
    report_launch(reporter, launch)
    if ready is not None:
        assert host.state is not None
        ready.started(launch, host.control.path if host.control is not None else None)
        stderr_to_run_log(host.state)
    received: list[int] = []

    def on_stop(signum: int) -> None:
        if received:
            host.kill_all_now()  # a second Ctrl-C: no more grace
        received.append(signum)
        reporter.write(f"orch-tui: {signal.Signals(signum).name}: stopping, "
                       "terminating running jobs")
        host.shutdown(kill=True, signal=signum)

    def on_hangup() -> None:
        # The terminal is gone: keep running, keep a record in the state folder instead.
        assert host.state is not None
        reporter.stream = open_run_log(host.state)
        reporter.write("orch-tui: SIGHUP: terminal gone, run continues headless")

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_stop, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        code = await host.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        host.close()
        for error in host.errors():
            print(f"orch-tui: warning: {printable(error)}", file=sys.stderr)
    if received:
        return 128 + received[0]
    return code


async def run_tui(path: Path | None, args: argparse.Namespace) -> int:
    """The TUI on a run in a process of its own (background.py): Enter on the config screen
    starts it there and attaches; a folder a live run holds is attached to. Whatever happens
    to this process, `d`, a closed terminal (SIGHUP), SIGTERM, SIGINT or kill -9, the run goes
    on; only the quit dialog's "stop" and "wait" reach it, as commands."""
    remote = RemoteRun(spawn=lambda plan: spawn_run(plan.config.path, run_flags(args)))
    early = start_early(remote, path, args)  # the run loads its list while Textual imports
    # pylint: disable-next=import-outside-toplevel  # textual only when a screen is drawn
    from orch_tui.tui.app import OrchApp
    # Textual sizes the screen with shutil.get_terminal_size(), which prefers these variables
    # to the terminal itself: exported, they would freeze the layout through every resize.
    for name in ("COLUMNS", "LINES"):
        os.environ.pop(name, None)
    app = OrchApp(remote,
                  path,
                  start_dir=Path.cwd(),
                  yes=args.yes,
                  connector=RemoteRun.connect,
                  starting=early[1] if early else None,
                  settings=SettingsFile.default(),
                  quiet=args.quiet)

    await attach.run_screen(app)
    controller = app.controller
    config = app.plan.config if app.plan is not None else early[0] if early else None
    if not isinstance(controller, RemoteRun) or not controller.started or config is None:
        if early and app.starting is not None and not remote.started:
            folder = printable(shell_quote([str(early[0].directories.output_dir)]))
            print(f"orch-tui: left while the run was starting; it goes on: orch-tui attach "
                  f"{folder}")
        error = remote.config_error
        return error.exit_code if error is not None else EXIT_OK
    await controller.close()
    if app.model is not None and app.model.finished is not None and not app.detached:
        # The screen is gone with the TUI: the terminal keeps what happened and what is left.
        print_exit_summary(sys.stdout, app.model.finished, resume_command(args, config))
    return attach.report_end(app, controller.pid, config.directories.output_dir)


def start_early(remote: RemoteRun, path: Path | None,
                args: argparse.Namespace) -> tuple[Config, Starting] | None:
    """With --yes on a valid config whose folder no live run holds, start the run at once,
    before Textual is even imported: its list loads in its own process meanwhile, and the app
    shows that progress until it can attach. Otherwise (None) the app opens as before: the
    config screen shows a config error, the preflight offers to attach to the live run."""
    if not args.yes or path is None:
        return None
    try:
        config = load_config(path)
    except OrchError:
        return None
    if live_run(config.directories.output_dir) is not None:
        return None
    progress = LoadProgress()
    spawning = spawn_run(config.path, run_flags(args), progress.update)
    return config, Starting(remote.adopt(spawning), progress)


#: Counts of jobs a rerun of the same command runs again (missing inputs need the operator).
WORK_LEFT = ("failed", "killed", "cancelled", "queued", "running", "paused", "stopping")


def resume_command(args: argparse.Namespace, config: Config) -> str:
    """The command that finishes the work left (README: resume by running the same command):
    the same config, --jobs and --joblog; never --overwrite or --fresh (they would redo the
    work done) nor --demo (it would write the workspace again)."""
    installed = Path(sys.argv[0]).name == "orch-tui"  # else python -m orch_tui
    program = ["orch-tui"] if installed else [sys.executable, "-m", "orch_tui"]
    program += run_flags(args, resume=True)
    if args.yes:
        program.append("--yes")
    return shell_quote([*program, str(config.path)])


def print_exit_summary(stream: TextIO | None, finished: RunFinished, resume: str) -> None:
    """After the TUI: headless's summary line, then how to resume when work is left."""
    lines = [HeadlessReporter.summary_line(finished)]
    left = sum(finished.counts.get(name, 0) for name in WORK_LEFT)
    if left:
        jobs = "1 job" if left == 1 else f"{left} jobs"
        lines.append(f"{jobs} left to do (failed, killed or not run); to run them, "
                     "run the same command again:")
        lines.append(f"  {printable(resume)}")
    try:
        if stream is not None:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
    except (OSError, ValueError):
        pass  # the terminal went away as the app closed: run.log and the journal keep it


def guard_standard_fds() -> None:
    """Started with stdin, stdout or stderr closed (`>&-`), the next file opened (a log, the
    journal) would get that number and receive whatever is printed: fill each gap with
    /dev/null, so the headless reporter's writes go nowhere and it switches to run.log."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            if fd == 1:
                sys.stdout = None  # the reporter uses run.log


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script and `python -m orch_tui`."""
    guard_standard_fds()
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] == "attach":  # as a subcommand: the name wins over a config file
        return attach.main(words[1:])
    if words and words[0] == "node":  # this machine joins a cluster (cluster/node.py)
        return node_main(words[1:])
    if words and words[0] in subcommands.SUBCOMMANDS:
        # A subcommand name wins over a config file of that name (`--config status` is one).
        return subcommands.main(words[0], words[1:])
    return run(argv)


def node_main(argv: list[str]) -> int:
    """`orch-tui node`: only with the cluster extra; one line and exit 2 without it."""
    try:
        # pylint: disable-next=import-outside-toplevel  # distributed only on a cluster node
        from orch_tui.cluster import node
    except ImportError as exc:
        print(
            f"orch-tui node: error: needs the cluster extra ({exc.name} is missing): "
            "pip install 'orch-tui[cluster]'",
            file=sys.stderr)
        return EXIT_USAGE
    return node.main(argv)


def run(argv: list[str] | None) -> int:
    """`orch-tui [CONFIG]`: a run, in the TUI or headless, or its dry run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.detach and args.dry_run:
        parser.error("--detach runs the plan and --dry-run runs nothing: give one of them")
    if args.adaptive and args.max_procs is not None:
        parser.error("--jobs N runs exactly N jobs and --adaptive finds the number: give one")
    if args.cluster is not None and (problem := address_problem(args.cluster)):
        parser.error(f"--cluster: {problem}")
    if args.ready_fd is not None:
        return run_in_background(parser, args, argv)
    try:
        path = _config_path(parser, args)
        if use_tui(args):
            return asyncio.run(run_tui(path, args))
        assert path is not None
        return run_plan(load_plan(path), args, argv)
    except OrchError as exc:
        print(f"orch-tui: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except OSError as exc:
        # A last resort: every expected failure has its own message; this keeps the promise
        # of one line and no traceback for the unexpected ones (EMFILE at start, ...).
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"orch-tui: error: {printable(where)}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE


def run_plan(plan: Plan, args: argparse.Namespace, argv: list[str] | None) -> int:
    """A valid plan without the TUI: its dry run, a detached run, or a headless one."""
    if args.dry_run:
        return dry_run(plan)
    if args.detach:
        return detach(plan, args)
    return asyncio.run(run_headless(plan, options_from(args, argv, plan)))


def detach(plan: Plan, args: argparse.Namespace) -> int:
    """`--detach`: the config was checked here; the run goes on in a process of its own, and
    this one prints its pid and how to find it again."""
    spawned = asyncio.run(spawn_run(plan.config.path, run_flags(args)))
    for line in (spawned.launch.notice, spawned.launch.where, spawned.launch.resume):
        if line:
            print(f"orch-tui: {printable(line)}", file=sys.stderr)
    sys.stdout.write(detached_message(spawned, plan.config.directories.output_dir))
    return EXIT_OK


def run_in_background(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      argv: list[str] | None) -> int:
    """The run process `--detach` and the TUI start (see background.py): leave the terminal,
    load the plan, run it headless into run.log, and report on the ready descriptor."""
    ready = ReadyPipe(args.ready_fd)
    leave_terminal()
    try:
        path = _config_path(parser, args)
        assert path is not None
        plan = load_plan(path, ready.loading)
        return asyncio.run(run_headless(plan, options_from(args, argv, plan), ready=ready))
    except OrchError as exc:
        ready.refused(exc)
        return exc.exit_code
