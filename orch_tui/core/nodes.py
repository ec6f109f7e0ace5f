"""Each node of a run as an observer shows it: its latest figures, its state and the jobs it holds.

One fold shared by the run's record (the snapshot an attached client and `orch-tui status` get)
and the TUI's model, so both count the same way. Everything is kept incrementally from the
events: the jobs a node holds change with each `JobStateChanged`, never by a scan of the jobs,
so a screen redrawing the nodes twice a second costs O(nodes) at 100,000 jobs. A local run has
one node (this machine); the nodes panel and the per-node lines show only from two on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from orch_tui.core import events as ev
from orch_tui.core.events import NodeState
from orch_tui.core.scaling import CapacitySource
from orch_tui.core.textutil import format_bytes


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node now: `sample` is its latest SystemSample (None before the first), `running`
    the jobs holding a process there (running, paused or stopping)."""

    name: str
    state: NodeState = NodeState.UP
    failures: int = 0  # the failures in a row behind a QUARANTINED state
    address: str = ""
    sample: ev.SystemSample | None = None
    running: int = 0

    @property
    def live_sample(self) -> ev.SystemSample | None:
        """Its latest sample, None once it is lost: the figures to show as the node's now."""
        return None if self.state is NodeState.LOST else self.sample

    @property
    def state_text(self) -> str:
        """`up`, `set aside after 3 failures`, `lost`: the words the panel and status use."""
        return state_words(self.state, self.failures)


def state_words(state: NodeState, failures: int) -> str:
    """A node's state in words: a set-aside node says after how many failures in a row."""
    if state is NodeState.QUARANTINED:
        return f"set aside after {failures} failure{'' if failures == 1 else 's'}"
    return str(state.value)


def figure_cells(cores: int | None, cpu_percent: float | None, total: int | None,
                 available: int | None, running: int) -> tuple[str, str, str, str]:
    """A node's figures as the nodes panel and `orch-tui status` write them: `8c`, `45%`,
    `3.1G/7.8G` (memory used of total), `2 jobs`; `-` for a figure the source does not have."""
    memory = "-"
    if total is not None and available is not None:
        used = format_bytes(total - available, compact=True)
        memory = f"{used}/{format_bytes(total, compact=True)}"
    return ("-" if cores is None else f"{cores}c",
            "-" if cpu_percent is None else f"{cpu_percent:.0f}%", memory,
            f"{running} job{'' if running == 1 else 's'}")


def node_cells(node: NodeView) -> tuple[str, str, str, str]:
    """`figure_cells` of a node's latest sample and its jobs: `-` before its first sample, and
    once it is lost (its last figures are not how it is now)."""
    sample = node.live_sample
    if sample is None:
        return figure_cells(None, None, None, None, node.running)
    return figure_cells(sample.logical_cores, sample.cpu_percent, sample.total_memory,
                        sample.available_memory, node.running)


def combined(samples: Sequence[ev.SystemSample]) -> ev.SystemSample:
    """Several nodes' samples of one sweep as one (the resource gauges and charts): cores and
    memory add up, the CPU percentage is weighted by cores, the shared output filesystem counts
    once (the least any node reports), as the scheduler's own sum (limits.cluster)."""
    if len(samples) == 1:
        return samples[0]
    cores = sum(s.logical_cores for s in samples)
    last = max(samples, key=lambda s: s.time)
    memory_cgroup = any(s.memory_source is CapacitySource.CGROUP for s in samples)
    cores_cgroup = any(s.cores_source is CapacitySource.CGROUP for s in samples)
    return replace(last,
                   node="+".join(sorted(s.node for s in samples)),
                   logical_cores=cores,
                   cpu_percent=sum(s.cpu_percent * s.logical_cores
                                   for s in samples) / max(1, cores),
                   total_memory=sum(s.total_memory for s in samples),
                   available_memory=sum(s.available_memory for s in samples),
                   free_disk=min(s.free_disk for s in samples),
                   disk_total=min(s.disk_total for s in samples),
                   cores_source=CapacitySource.CGROUP if cores_cgroup else CapacitySource.HOST,
                   memory_source=CapacitySource.CGROUP if memory_cgroup else CapacitySource.HOST)


class NodeTally:
    """The nodes of a run, folded from its events (`apply`); `views()` in name order.

    A node is known from its samples and state changes (a job's node alone does not make one:
    a test's or a local run's job names its host, which the samples name too)."""

    def __init__(self, nodes: Iterable[NodeView] = ()) -> None:
        self._nodes: dict[str, NodeView] = {node.name: node for node in nodes}
        self._running: dict[str, int] = {node.name: node.running for node in nodes}
        #: Where each job holding a process holds it: what a state change moves from a node.
        self._holding: dict[int, str] = {}
        #: Bumped with every change, so a screen redraws the nodes only when they changed.
        self.version = 0

    def seed_jobs(self, jobs: Iterable[tuple[int, str]]) -> None:
        """The active jobs of a snapshot and their nodes (attaching midway: the counts came
        with the snapshot's nodes; only the jobs' places are learned here)."""
        for job_id, node in jobs:
            if node:
                self._holding[job_id] = node

    def apply(self, event: ev.Event) -> bool:
        """Fold one event in; True when a node changed."""
        if isinstance(event, ev.SystemSample):
            self._update(event.node, sample=event)
        elif isinstance(event, ev.NodeStateChanged):
            self._update(event.node,
                         state=event.state,
                         failures=event.failures,
                         address=event.address or self._get(event.node).address)
        elif isinstance(event, ev.JobStateChanged):
            return self._job(event)
        else:
            return False
        return True

    def _get(self, name: str) -> NodeView:
        return self._nodes.get(name) or NodeView(name)

    def _update(self, name: str, **values: object) -> None:
        self._nodes[name] = replace(self._get(name), **values)  # type: ignore[arg-type]
        self.version += 1

    def _job(self, event: ev.JobStateChanged) -> bool:
        before = self._holding.pop(event.job_id, None)
        after = event.node if event.state.active and event.node else None
        if after is not None:
            self._holding[event.job_id] = after
        if before == after:
            return False
        running = self._running
        if before is not None:
            running[before] = max(0, running.get(before, 0) - 1)
        if after is not None:
            running[after] = running.get(after, 0) + 1
        self.version += 1
        return True

    def views(self) -> tuple[NodeView, ...]:
        """Every node known, in name order, with the jobs it holds."""
        nodes, running = self._nodes, self._running
        return tuple(replace(nodes[name], running=running.get(name, 0)) for name in sorted(nodes))

    def __len__(self) -> int:
        return len(self._nodes)

    def names(self) -> list[str]:
        """The nodes' names, sorted (the table's node filter cycles them)."""
        return sorted(self._nodes)

    def samples(self) -> list[ev.SystemSample]:
        """The latest sample of every node that sent one and is not lost."""
        return [
            node.sample for node in self._nodes.values()
            if node.sample is not None and node.state is not NodeState.LOST
        ]
