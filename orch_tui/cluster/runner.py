"""`DaskRunner`: the runner interface (core/runner.py) for jobs on a Dask distributed cluster.

One Dask task per job attempt, packed onto nodes by the resources one job needs (`CPU`, `MEM`,
from calibration); on the node the task runs the job through the worker plugin's local runner
(cluster/worker.py). The task announces where its job runs at once (`log_event`), so `start`
returns the node and pid; its result is the job's exit status. Signals go to the job's node with
`client.run(..., workers=[address])`, in the order they were asked for. Samples and node figures
come from the plugins' batches, one per node per second.

Faults: a node that dies mid-job is Dask's to handle (its tasks are rescheduled: the job runs
again from scratch on another node, announced again); it is reported LOST. A node whose jobs
fail `QUARANTINE_AFTER` times in a row gets no more (QUARANTINED). A scheduler that goes away
ends every wait: starts are refused as systemic (no more launches), running jobs end failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from distributed import Client, Future
from distributed.client import FutureCancelledError
from distributed.security import Security

from orch_tui.cluster import protocol
from orch_tui.cluster.worker import OrchPlugin, close_run, control, kill_run, run_job
from orch_tui.core import events as ev
from orch_tui.core.errors import OrchError, SpawnError
from orch_tui.core.events import NodeState, NoticeLevel
from orch_tui.core.fsutil import existing_ancestor
from orch_tui.core.plan import JobSpec, Plan
from orch_tui.core.runner import ExitCallback, ExitStatus, NodeStats, ProcessSample, Runner, Started
from orch_tui.core.session import RunnerFactory
from orch_tui.core.statedir import StateDir

#: Failures in a row on one node before it gets no more jobs (a binary missing there, a full
#: local disk): the rest of the cluster carries the run.
QUARANTINE_AFTER = 3
#: Seconds to reach the scheduler, and to wait for the first word of its nodes.
CONNECT_TIMEOUT = 10.0
#: What a job that never got an exit status (its task cancelled, the scheduler gone) ended with.
NO_STATUS = ExitStatus(exit_code=None, signal=None, cpu_seconds=0.0, max_rss_bytes=0, lost=True)


class ClusterError(OrchError):
    """The cluster cannot be used: one line naming the scheduler's address."""


@dataclass(slots=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per fact of an attempt
class _Attempt:
    """One job attempt's task and what the driver knows of it."""

    spec: JobSpec
    key: str
    future: Future
    on_exit: ExitCallback
    started: asyncio.Future[Started]
    address: str = ""
    node: str = ""
    stopping: bool = False


@dataclass(slots=True)
class _Node:
    """A worker as the batches describe it."""

    name: str
    address: str
    stats: NodeStats
    resources: dict[str, float]
    batches: list[float] = field(default_factory=list)  # arrival times (tests read the pace)
    failures: int = 0
    state: NodeState = NodeState.UP


# The run's client, attempts and nodes.
# pylint: disable-next=too-many-instance-attributes
class DaskRunner(Runner):
    """Runs every job of one run on the cluster whose scheduler is at `address`."""

    # pylint: disable-next=too-many-arguments  # the run's identity and the cluster's options
    def __init__(self,
                 address: str,
                 output_dir: Path,
                 run_token: str,
                 bus: ev.EventBus,
                 *,
                 security: Security | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.address, self.run_token = address, run_token
        self._output_dir, self._bus, self._security = output_dir, bus, security
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._client: Client | None = None
        self._attempts: dict[int, _Attempt] = {}
        self._by_key: dict[str, _Attempt] = {}
        self._last: dict[int, Future] = {}  # each job's latest task, ended or not
        self._serial = itertools.count(1)
        self._nodes: dict[str, _Node] = {}  # by address
        self._samples: dict[int, ProcessSample] = {}
        self._requests: dict[str, float] = {}
        self._controls: asyncio.Queue[Coroutine[Any, Any, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lost_scheduler = ""

    # --- connecting and letting go

    async def open(self) -> None:
        # The run says what happens to it in its own typed notices; distributed's log lines
        # (reconnection tracebacks when the scheduler goes away) would break the one-line rule.
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] == "distributed":  # dask's config sets some by name
                logging.getLogger(name).setLevel(logging.CRITICAL)
        client = Client(self.address,
                        asynchronous=True,
                        security=self._security,
                        timeout=CONNECT_TIMEOUT,
                        set_as_default=False)
        try:
            # Bounded here too: Client's own timeout covers reaching the port, not a peer that
            # accepts and never answers (a web server there), which hung the run for good.
            await asyncio.wait_for(_handshake(client), CONNECT_TIMEOUT)
        except asyncio.CancelledError:  # the run was stopped while it waited
            with contextlib.suppress(Exception):
                await client.close()
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # any refusal: one line
            with contextlib.suppress(Exception):  # closed, it has nothing to warn about on exit
                await client.close()
            hint = ""
            if isinstance(exc, TypeError):  # distributed's word for tls:// without TLS set up
                hint = ("; for tls:// set DASK_DISTRIBUTED__COMM__TLS__CA_FILE, __CLIENT__CERT "
                        "and __CLIENT__KEY")
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address}: "
                               f"{_reason(exc)}{hint}") from None
        self._client = client
        client = self._client
        client.subscribe_topic(protocol.NODE_TOPIC, self._on_batch)
        client.subscribe_topic(protocol.started_topic(self.run_token), self._on_started)
        client.subscribe_topic("all", self._on_scheduler_event)
        await client.register_plugin(OrchPlugin())
        self._spawn(self._run_controls())
        await self._first_batches()

    async def _first_batches(self) -> None:
        """Wait until every worker the scheduler knows has sent its figures (the limit and the
        reserves are computed from them), a few seconds at most."""
        assert self._client is not None
        identity = await self._client.scheduler.identity(n_workers=-1)
        expected = set(identity.get("workers", {}))
        if not expected:
            raise ClusterError(f"the Dask scheduler at {self.address} has no workers: start one "
                               f"on each machine with: orch-tui node {self.address}")
        deadline = self._loop.time() + CONNECT_TIMEOUT
        while not expected <= set(self._nodes) and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        if not self._nodes:
            raise ClusterError(f"no worker of the Dask scheduler at {self.address} reports: "
                               "are they orch-tui nodes of the same version?")

    async def aclose(self) -> None:
        self.close()
        client = self._client
        if client is None:
            return
        for task in self._tasks:
            task.cancel()
        if not self._lost_scheduler:
            with contextlib.suppress(Exception):  # the run is over: nothing left to tell
                await asyncio.wait_for(client.run(close_run, self.run_token, on_error="ignore"),
                                       CONNECT_TIMEOUT)
        with contextlib.suppress(Exception):
            await client.close(timeout=CONNECT_TIMEOUT)
        self._client = None

    def close(self) -> None:
        for attempt in self._attempts.values():
            if not attempt.started.done():
                attempt.started.cancel()

    # --- starting

    def set_requests(self, cpu_cores: float, memory_bytes: int) -> None:
        """Dask packs by these; never more than the largest node has (a job bigger than any
        node still runs, alone on the biggest, as it would locally)."""
        requests = {}
        for name, value in (("CPU", cpu_cores), ("MEM", float(memory_bytes))):
            largest = max((node.resources.get(name, 0.0) for node in self._nodes.values()),
                          default=0.0)
            if math.isfinite(value) and value > 0 and largest > 0:
                requests[name] = min(value, largest)
        self._requests = requests

    async def start(self, spec: JobSpec, on_exit: ExitCallback) -> Started:
        client = self._client
        if client is None or self._lost_scheduler:
            raise SpawnError(self._lost_scheduler or "not connected to the Dask scheduler",
                             systemic=True,
                             told=bool(self._lost_scheduler))
        workers = self._allowed()
        key = f"orch-tui-{self.run_token}-{spec.job_id}-{next(self._serial)}"
        future = client.submit(run_job,
                               spec,
                               self.run_token,
                               str(self._output_dir),
                               key,
                               key=key,
                               pure=False,
                               retries=0,
                               resources=dict(self._requests) or None,
                               workers=workers,
                               allow_other_workers=False)
        attempt = _Attempt(spec, key, future, on_exit, self._loop.create_future())
        self._attempts[spec.job_id] = self._by_key[key] = attempt
        self._last[spec.job_id] = future
        self._spawn(self._watch(attempt))
        return await attempt.started

    def _allowed(self) -> list[str] | None:
        """The workers a job may go to: all but the quarantined (None: any, as Dask likes)."""
        if not any(node.state is NodeState.QUARANTINED for node in self._nodes.values()):
            return None
        allowed = [a for a, node in self._nodes.items() if node.state is NodeState.UP]
        if not allowed:
            raise SpawnError(
                f"every node of the cluster at {self.address} is quarantined after "
                f"{QUARANTINE_AFTER} failed jobs in a row",
                systemic=True)
        return allowed

    async def _watch(self, attempt: _Attempt) -> None:
        """The task's end: its exit status to the job's owner, or why it never started."""
        try:
            outcome = protocol.Outcome.decode(await attempt.future)
        except FutureCancelledError as exc:
            if exc.reason == "scheduler-connection-lost":
                self._scheduler_lost()
            self._ended(attempt, None)
            return
        except Exception as exc:  # pylint: disable=broad-exception-caught  # a task's error
            self._notice(
                NoticeLevel.WARNING,
                f"job {attempt.spec.job_id} ({attempt.spec.name}): the cluster lost "
                f"its task: {exc}")
            self._ended(attempt, None)
            return
        if outcome.status is None:
            self._count(outcome.address, outcome.node, ok=False)
            self._forget(attempt)
            if not attempt.started.done():
                attempt.started.set_exception(
                    SpawnError(f"on node {outcome.node}: {outcome.spawn_error}",
                               systemic=outcome.systemic))
            return
        if not attempt.stopping:
            self._count(outcome.address,
                        outcome.node,
                        ok=outcome.status.ok and outcome.wrote_output)
        self._ended(attempt, outcome.status)

    def _ended(self, attempt: _Attempt, status: ExitStatus | None) -> None:
        self._forget(attempt)
        if not attempt.started.done():
            if status is None and not attempt.stopping:
                attempt.started.set_exception(
                    SpawnError(self._lost_scheduler or "the cluster dropped its task",
                               systemic=bool(self._lost_scheduler)))
                return
            attempt.started.set_result(Started(attempt.node, 0))  # cancelled before it ran
        # After start() has returned: the owner knows the job runs before it hears it ended.
        self._loop.call_soon(attempt.on_exit, attempt.spec.job_id, status or NO_STATUS)

    def _forget(self, attempt: _Attempt) -> None:
        self._by_key.pop(attempt.key, None)
        if self._attempts.get(attempt.spec.job_id) is attempt:
            del self._attempts[attempt.spec.job_id]
            self._samples.pop(attempt.spec.job_id, None)

    def _on_started(self, event: tuple[float, dict[str, Any]]) -> None:
        started = protocol.JobStarted.decode(event[1])
        attempt = self._by_key.get(started.key)
        if attempt is None:
            return
        again = attempt.started.done()
        attempt.node, attempt.address = started.node, started.address
        self._samples.pop(started.job_id, None)
        if not again:
            attempt.started.set_result(Started(started.node, started.pid))
            return
        # Its node died: Dask ran the task again elsewhere; the job starts over there.
        self._notice(
            NoticeLevel.WARNING,
            f"job {started.job_id} ({attempt.spec.name}) runs again on {started.node}: "
            "the node it ran on was lost")
        if attempt.stopping:
            self._control("terminate", attempt, 0.0)
        if self.on_restart is not None:
            self.on_restart(started.job_id, Started(started.node, started.pid))

    # --- signals

    def pause(self, job_id: int) -> None:
        self._signal("pause", job_id)

    def resume(self, job_id: int) -> None:
        self._signal("resume", job_id)

    def terminate(self, job_id: int, grace: float) -> None:
        attempt = self._attempts.get(job_id)
        if attempt is None:
            return
        attempt.stopping = True
        if not attempt.started.done():
            # Still waiting for a node with room: it never runs.
            self._spawn(_maybe_await(attempt.future.cancel()))
            return
        self._control("terminate", attempt, grace)

    def _signal(self, action: str, job_id: int) -> None:
        attempt = self._attempts.get(job_id)
        if attempt is not None and attempt.started.done():
            self._control(action, attempt, 0.0)

    def _control(self, action: str, attempt: _Attempt, grace: float) -> None:
        """Queue a signal for the job's node; they go one at a time, in order (a pause must
        not overtake the resume before it)."""
        client = self._client
        if client is None or not attempt.address:
            return
        self._controls.put_nowait(
            client.run(control,
                       action,
                       self.run_token,
                       attempt.spec.job_id,
                       grace,
                       workers=[attempt.address],
                       on_error="ignore"))

    async def _run_controls(self) -> None:
        while True:
            request = await self._controls.get()
            try:
                await asyncio.wait_for(request, CONNECT_TIMEOUT)
            except Exception:  # pylint: disable=broad-exception-caught  # a node gone: its jobs end
                pass

    def kill_all(self) -> None:
        client = self._client
        for attempt in list(self._attempts.values()):
            attempt.stopping = True
            if not attempt.started.done():
                self._spawn(_maybe_await(attempt.future.cancel()))
        if client is not None and not self._lost_scheduler:
            self._spawn(client.run(kill_run, self.run_token, on_error="ignore"))

    # --- figures

    def sample(self) -> dict[int, ProcessSample]:
        return dict(self._samples)

    def stats(self) -> dict[str, NodeStats]:
        try:
            disk = psutil.disk_usage(str(existing_ancestor(self._output_dir)))
            free, total = disk.free, disk.total
        except OSError:
            free = total = 0
        return {
            node.name: _with_disk(node.stats, free, total)
            for node in self._nodes.values() if node.state is NodeState.UP
        }

    def last_future(self, job_id: int) -> Future | None:
        """The Dask future of the job's latest attempt (tests and diagnostics)."""
        return self._last.get(job_id)

    def batch_times(self, node: str) -> list[float]:
        """When the node's batches arrived (loop time): the pace of its samples."""
        return next((n.batches for n in self._nodes.values() if n.name == node), [])

    def _on_batch(self, event: tuple[float, dict[str, Any]]) -> None:
        data = event[1]
        address, name = str(data["address"]), str(data["node"])
        stats = protocol.decode_stats(data["stats"])
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = _Node(name, address, stats, dict(data["resources"]))
            self._publish_node(node)
        node.stats, node.resources = stats, dict(data["resources"])
        node.batches.append(self._loop.time())
        del node.batches[:-100]
        for item in data["samples"]:
            if item.get("run") != self.run_token:
                continue
            sample = protocol.decode_sample(item)
            attempt = self._attempts.get(sample.job_id)
            if attempt is not None and attempt.address == address:
                self._samples[sample.job_id] = sample

    def _on_scheduler_event(self, event: tuple[float, dict[str, Any]]) -> None:
        data = event[1]
        if not isinstance(data, dict) or data.get("action") != "remove-worker":
            return
        node = self._nodes.get(str(data.get("worker")))
        if node is not None and node.state is not NodeState.LOST:
            node.state = NodeState.LOST
            self._publish_node(node)
            self._notice(
                NoticeLevel.WARNING,
                f"node {node.name} ({node.address}) was lost: its jobs run again "
                "on the other nodes")
            for attempt in self._attempts.values():
                if attempt.address == node.address:
                    self._samples.pop(attempt.spec.job_id, None)

    def _count(self, address: str, name: str, *, ok: bool) -> None:
        """One more job ended on a node: a success clears its failures; too many in a row set it
        aside."""
        node = self._nodes.get(address)
        if node is None:
            return
        if ok:
            node.failures = 0
            return
        node.failures += 1
        if node.failures >= QUARANTINE_AFTER and node.state is NodeState.UP:
            node.state = NodeState.QUARANTINED
            self._publish_node(node)
            self._notice(
                NoticeLevel.WARNING, f"node {name} gets no more jobs: {node.failures} failed "
                "in a row there (is the command installed on it?)")

    def _scheduler_lost(self) -> None:
        """Said once, as an error: every start from now on is refused with the same words."""
        if not self._lost_scheduler:
            self._lost_scheduler = (
                f"lost the Dask scheduler at {self.address}: no more launches, its running jobs "
                "are given up (failed); the journal keeps the run: run the same command again "
                "once the scheduler is back")
            self._notice(NoticeLevel.ERROR, self._lost_scheduler)

    # --- helpers

    def _publish_node(self, node: _Node) -> None:
        self._bus.publish(
            ev.NodeStateChanged(time=self._clock(),
                                node=node.name,
                                state=node.state,
                                failures=node.failures,
                                address=node.address))

    def _notice(self, level: NoticeLevel, message: str) -> None:
        self._bus.publish(ev.Notice(time=self._clock(), level=level, message=message))

    def _spawn(self, awaitable: Any) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        with contextlib.suppress(Exception):
            await value


def _with_disk(stats: NodeStats, free: int, total: int) -> NodeStats:
    """A node's figures with the shared output filesystem's space as the driver sees it."""
    return dataclasses.replace(stats, free_disk=free, disk_total=total)


async def _handshake(client: Client) -> None:
    """The client's connection and first exchange with the scheduler, as a coroutine."""
    await client


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return (f"no answer in {CONNECT_TIMEOUT:g} s: is a Dask scheduler listening there, and "
                "not another program?")
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def runner_factory(address: str) -> RunnerFactory:
    """What the command line hands the session for `--cluster ADDRESS`."""

    def make(plan: Plan, _state: StateDir, bus: ev.EventBus) -> Runner:
        return DaskRunner(address, plan.config.directories.output_dir, plan.run_token, bus)

    return make
