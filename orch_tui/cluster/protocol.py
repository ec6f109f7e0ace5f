"""What the driver and the nodes say to each other, as plain values.

Events travel through the Dask scheduler (`log_event` / `subscribe_topic`), which may run without
orch-tui installed: every payload is made of dicts, lists, strings and numbers only, and each
record here turns itself into one and back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from orch_tui.core.events import ProgressSource
from orch_tui.core.probes import Progress
from orch_tui.core.runner import ExitStatus, NodeStats, ProcessSample
from orch_tui.core.scaling import CapacitySource

#: The worker plugin's name on every worker (`orch-tui node` registers it; so does the driver,
#: for a plain `dask worker`).
PLUGIN_NAME = "orch-tui"
#: One batch per node per second: its figures and every job's sample there.
NODE_TOPIC = "orch-tui-node"


def started_topic(run_token: str) -> str:
    """The topic a run's tasks announce their start on (one per run: runs never mix)."""
    return f"orch-tui-started-{run_token}"


@dataclass(frozen=True, slots=True)
class JobStarted:
    """A task's first word: its job runs on `node` as `pid` (again, after its node died)."""

    job_id: int
    key: str
    node: str
    address: str
    pid: int

    def encode(self) -> dict[str, Any]:
        """As a plain dict."""
        return dataclasses.asdict(self)

    @classmethod
    def decode(cls, data: dict[str, Any]) -> JobStarted:
        """Back from `encode`."""
        return cls(int(data["job_id"]), str(data["key"]), str(data["node"]), str(data["address"]),
                   int(data["pid"]))


@dataclass(frozen=True, slots=True)
class Outcome:
    """A task's result: the job's exit status, or why it could not start."""

    status: ExitStatus | None
    node: str
    address: str
    spawn_error: str = ""
    systemic: bool = False
    #: False when it exited 0 but left no plain output file: the run fails it ("no output"),
    #: so it counts against its node as a failure.
    wrote_output: bool = True

    def encode(self) -> dict[str, Any]:
        """As a plain dict."""
        data = dataclasses.asdict(self)
        return data

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Outcome:
        """Back from `encode`."""
        status = data["status"]
        return cls(
            ExitStatus(**status) if status is not None else None, str(data["node"]),
            str(data["address"]), str(data["spawn_error"]), bool(data["systemic"]),
            bool(data.get("wrote_output", True)))


def encode_sample(run_token: str, sample: ProcessSample) -> dict[str, Any]:
    """One job's sample, tagged with its run."""
    data = dataclasses.asdict(sample)
    data["run"] = run_token
    if sample.progress is not None:
        data["progress"] = {**data["progress"], "source": sample.progress.source.value}
    return data


def decode_sample(data: dict[str, Any]) -> ProcessSample:
    """Back from `encode_sample` (its run tag dropped)."""
    fields = {key: value for key, value in data.items() if key != "run"}
    progress = fields.get("progress")
    if progress is not None:
        fields["progress"] = Progress(**{**progress, "source": ProgressSource(progress["source"])})
    return ProcessSample(**fields)


def encode_stats(stats: NodeStats) -> dict[str, Any]:
    """A node's figures."""
    data = dataclasses.asdict(stats)
    data["cores_source"] = stats.cores_source.value
    data["memory_source"] = stats.memory_source.value
    return data


def decode_stats(data: dict[str, Any]) -> NodeStats:
    """Back from `encode_stats`."""
    return NodeStats(
        **{
            **data, "cores_source": CapacitySource(data["cores_source"]),
            "memory_source": CapacitySource(data["memory_source"])
        })
