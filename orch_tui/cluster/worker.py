"""The node's side: a worker plugin that runs jobs through the local runner, and the task function.

Each run (by its token) gets a `LocalRunner` on the worker's event loop, with the shared output
folder's state folder: a job on a node is started, contained, guarded, logged and signalled
exactly as on the operator's machine, by the same code. The plugin sends one batch a second
with the node's figures and every running job's sample; a task tells the driver where its job
runs as soon as it does, then returns how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from dask.typing import Key
from distributed import WorkerPlugin, get_worker
from distributed.worker import Worker

from orch_tui.cluster import protocol
from orch_tui.core import cgroupfs
from orch_tui.core.errors import OrchError, SpawnError
from orch_tui.core.local_runner import LocalRunner, machine_stats
from orch_tui.core.plan import JobSpec
from orch_tui.core.runner import ExitStatus
from orch_tui.core.statedir import StateDir

#: Seconds between two batches of samples (the local sampler's default pace).
SAMPLE_INTERVAL = 1.0


@dataclasses.dataclass(slots=True)
class _Run:
    """One run's jobs on this node."""

    runner: LocalRunner
    state: StateDir


# The node's runs, their running tasks and its figures' pace.
# pylint: disable-next=too-many-instance-attributes
class OrchPlugin(WorkerPlugin):
    """Runs jobs for orch-tui runs on this worker and reports their figures once a second.

    Idempotent: the driver registers it on every worker (so a plain `dask worker` serves runs
    too) without replacing the one `orch-tui node` started with."""

    name = protocol.PLUGIN_NAME
    idempotent = True

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        self.interval = interval
        self._runs: dict[str, _Run] = {}
        self._keys: dict[str, tuple[str, int]] = {}  # a running task's key -> (run, job)
        self._orphaned: set[str] = set()  # runs whose driver let go of a running task
        self._worker: Worker | None = None
        self._beat: asyncio.Task[None] | None = None
        self._groups: cgroupfs.Groups | None = None
        self._cores = 0

    def setup(self, worker: Worker) -> None:
        """Read this machine's groups and cores (not the driver's, where the plugin was built)
        and start the once-a-second batch on the worker's loop."""
        self._worker = worker
        self._groups = cgroupfs.find_groups()
        self._cores = len(os.sched_getaffinity(0))
        self._beat = asyncio.get_running_loop().create_task(self._beating(),
                                                            name="orch-tui samples")

    def teardown(self, worker: Worker) -> None:
        """The worker closes: its jobs die with it (the guardian would see to it anyway)."""
        if self._beat is not None:
            self._beat.cancel()
        for token in list(self._runs):
            self.close_run(token)

    @property
    def node(self) -> str:
        """The worker's name: what the operator sees in the node column."""
        assert self._worker is not None
        return str(self._worker.name)

    # --- runs

    def _run(self, token: str, output_dir: Path) -> _Run:
        run = self._runs.get(token)
        if run is None:
            state = StateDir.open(output_dir)
            try:
                # A containment token of this worker's own: two nodes on one machine (tests, a
                # big box split in two) must not share one run group.
                runner = LocalRunner(output_dir,
                                     state=state,
                                     run_token=f"{token}-{secrets.token_hex(4)}")
            except BaseException:
                state.close()
                raise
            runner.node = self.node
            run = self._runs[token] = _Run(runner, state)
        return run

    def runner(self, token: str) -> LocalRunner | None:
        """The run's local runner here, if it ever ran a job on this node."""
        run = self._runs.get(token)
        return run.runner if run is not None else None

    def close_run(self, token: str) -> None:
        """The run is over: kill what is left of it here, drop its guardian and containment."""
        run = self._runs.pop(token, None)
        if run is not None:
            run.runner.close()
            run.state.close()

    async def run_job(self, spec: JobSpec, token: str, output_dir: Path,
                      key: str) -> dict[str, Any]:
        """Start the job, announce it, wait for its end; the encoded `Outcome`."""
        assert self._worker is not None
        try:
            run = self._run(token, output_dir)
            _remove_temp_output(run.state, spec)
            ended: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
            started = await run.runner.start(spec, lambda _job, status: ended.set_result(status))
        except SpawnError as exc:
            return self._outcome(None, str(exc), exc.systemic)
        except OrchError as exc:  # no guardian, no containment, no state folder: the node's
            return self._outcome(None, f"on node {self.node}: {exc}", True)
        self._worker.log_event(
            protocol.started_topic(token),
            protocol.JobStarted(spec.job_id, key, self.node, self._worker.address,
                                started.pid).encode())
        self._keys[key] = (token, spec.job_id)
        try:
            status = await asyncio.shield(ended)
        except asyncio.CancelledError:
            run.runner.terminate(spec.job_id, 0)  # no job runs unowned
            raise
        finally:
            self._keys.pop(key, None)
        wrote = not status.ok or _wrote_output(run.state, spec)
        if token in self._orphaned and all(run != token for run, _ in self._keys.values()):
            self._orphaned.discard(token)
            self.close_run(token)  # its driver is gone: nobody else will close it here
        return self._outcome(status, wrote_output=wrote)

    def transition(self, key: Key, start: str, finish: str, **kwargs: Any) -> None:
        """A running job whose task the scheduler let go (the driver died, or cancelled it)
        is killed at once: on a cluster, the run's owner going away leaves no job behind, as
        the guardian sees to locally."""
        if finish in ("cancelled", "released", "forgotten") and isinstance(key, str) \
                and key in self._keys:
            token, job_id = self._keys[key]
            self._orphaned.add(token)
            runner = self.runner(token)
            if runner is not None:
                runner.terminate(job_id, 0)

    def _outcome(self,
                 status: ExitStatus | None,
                 error: str = "",
                 systemic: bool = False,
                 *,
                 wrote_output: bool = True) -> dict[str, Any]:
        assert self._worker is not None
        return protocol.Outcome(status, self.node, self._worker.address, error, systemic,
                                wrote_output).encode()

    # --- figures

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):  # a bad sweep must not end the node's figures
                self.send_batch()

    def send_batch(self) -> None:
        """One event: the node's figures and every job's sample here, for every run."""
        assert self._worker is not None
        samples = [
            protocol.encode_sample(token, sample) for token, run in list(self._runs.items())
            for sample in run.runner.sample().values()
        ]
        assert self._groups is not None
        stats = machine_stats(self.node, self._cores, self._groups, None)
        self._worker.log_event(
            protocol.NODE_TOPIC, {
                "node": self.node,
                "address": self._worker.address,
                "stats": protocol.encode_stats(stats),
                "resources": dict(self._worker.state.total_resources),
                "samples": samples,
            })


def _temp_folder(state: StateDir, spec: JobSpec) -> int | None:
    """The run's temp folder of `spec`'s output, opened by descriptor (never through a link);
    None when the job has no output of ours or the folder is not there."""
    temp = spec.temp_output_path
    if temp is None:
        return None
    try:
        return os.open(temp.parent.name,
                       os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=state.tmp_fd)
    except OSError:
        return None


def _remove_temp_output(state: StateDir, spec: JobSpec) -> None:
    """An attempt starts from nothing: what a node that died mid-job left half-written goes."""
    fd = _temp_folder(state, spec)
    if fd is None:
        return  # no temp folder: nothing was written; the job's own open says why if it fails
    try:
        os.unlink(spec.output_name, dir_fd=fd)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise SpawnError(f"cannot remove its old temporary output: {exc.strerror}") from None
    finally:
        os.close(fd)


def _wrote_output(state: StateDir, spec: JobSpec) -> bool:
    """Whether an attempt left the plain file its success needs (the driver's rename judges
    the same): exit 0 without it is a failure, which counts against the node like any other."""
    if not spec.layout.uses_output:
        return True
    fd = _temp_folder(state, spec)
    if fd is None:
        return False
    try:
        return stat.S_ISREG(os.stat(spec.output_name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
    finally:
        os.close(fd)


def _plugin(worker: Worker) -> OrchPlugin:
    plugin = worker.plugins.get(protocol.PLUGIN_NAME)
    if not isinstance(plugin, OrchPlugin):
        raise RuntimeError(f"worker {worker.name} has no orch-tui plugin")
    return plugin


async def run_job(spec: JobSpec, token: str, output_dir: str, key: str) -> dict[str, Any]:
    """The Dask task of one job attempt: runs on the worker's event loop (an `async def` task),
    so the job is the plugin's local runner's child, watched by its pidfd there."""
    return await _plugin(get_worker()).run_job(spec, token, Path(output_dir), key)


def control(action: str, token: str, job_id: int, grace: float, dask_worker: Worker) -> bool:
    """`client.run` target: pause, resume, terminate or kill a job of a run on this node."""
    runner = _plugin(dask_worker).runner(token)
    if runner is None or runner.pid_of(job_id) is None:
        return False
    if action == "pause":
        runner.pause(job_id)
    elif action == "resume":
        runner.resume(job_id)
    elif action == "terminate":
        runner.terminate(job_id, grace)
    return True


def kill_run(token: str, dask_worker: Worker) -> None:
    """`client.run` target: SIGKILL every job of a run here."""
    runner = _plugin(dask_worker).runner(token)
    if runner is not None:
        runner.kill_all()


def close_run(token: str, dask_worker: Worker) -> None:
    """`client.run` target: the run is over; release what it holds on this node."""
    _plugin(dask_worker).close_run(token)


def job_pid(token: str, job_id: int, dask_worker: Worker) -> int | None:
    """`client.run` target: a running job's pid here (tests and diagnostics)."""
    runner = _plugin(dask_worker).runner(token)
    return runner.pid_of(job_id) if runner is not None else None
