"""A real Dask cluster on 127.0.0.1 for the cluster tests: `dask scheduler` and two nodes
started with `orch-tui node` ("node-a", "node-b", each CPU=1 MEM=2e9), a temporary folder
standing in for the shared storage. Started once per test session (conftest's `dask_cluster`);
a test that kills a node starts it again with `ensure_nodes`. Everything started here is stopped
at the end, and checked gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.tmux import wait_until

NODES = ("node-a", "node-b")
NODE_CPU, NODE_MEMORY = 1, 2_000_000_000
START_TIMEOUT = 60.0


@dataclass
class Cluster:
    """The scheduler's address, the nodes' processes and the shared folder."""

    root: Path
    names: tuple[str, ...] = NODES
    scheduler: subprocess.Popen | None = None
    address: str = ""
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def shared(self) -> Path:
        """The folder every node sees at the same path (the tests' "NFS")."""
        return self.root / "shared"

    def _log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self) -> None:
        """The scheduler, then both nodes, each waited for."""
        self.shared.mkdir(parents=True, exist_ok=True)
        info = self.root / "scheduler.json"
        # pylint: disable-next=consider-using-with  # stopped in stop()
        self.scheduler = subprocess.Popen([
            sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
            "0", "--no-dashboard", "--scheduler-file",
            str(info)
        ],
                                          stdin=subprocess.DEVNULL,
                                          stdout=self._log("scheduler").open("wb"),
                                          stderr=subprocess.STDOUT,
                                          start_new_session=True)
        wait_until(lambda: info.exists() and info.stat().st_size > 0,
                   START_TIMEOUT,
                   "the scheduler's address",
                   detail=lambda: self._log("scheduler").read_text(errors="replace"))
        self.address = wait_until(lambda: _address(info), START_TIMEOUT, "the scheduler file")
        self.ensure_nodes()

    def ensure_nodes(self) -> None:
        """Every node running and joined (a test may have killed one)."""
        started = []
        for name in self.names:
            process = self.nodes.get(name)
            if process is None or process.poll() is not None:
                if process is not None:
                    process.wait()
                self._log(name).write_bytes(b"")
                # pylint: disable-next=consider-using-with  # stopped in stop()
                self.nodes[name] = subprocess.Popen(
                    [
                        sys.executable, "-m", "orch_tui", "node", self.address, "--name", name,
                        "--cpu",
                        str(NODE_CPU), "--memory",
                        str(NODE_MEMORY), "--death-timeout", "20"
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=self._log(name).open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                started.append(name)
        for name in started:
            wait_until(lambda name=name: self._joined(name),
                       START_TIMEOUT,
                       f"{name} to join the scheduler",
                       detail=lambda name=name: self._log(name).read_text(errors="replace"))

    def _joined(self, name: str) -> bool:
        """The node said it joined; a node that exited fails at once with its log."""
        log = self._log(name).read_bytes()
        if self.nodes[name].poll() is not None:
            raise AssertionError(f"{name} exited: {log.decode(errors='replace')}")
        return b"joined" in log

    def kill_node(self, name: str) -> None:
        """SIGKILL a node's worker process, as a machine that dies would."""
        process = self.nodes[name]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the nodes, then the scheduler; wait for each (SIGKILL after 20 s)."""
        for process in [*self.nodes.values(), self.scheduler]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.nodes.values(), self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _address(info: Path) -> str:
    try:
        return str(json.loads(info.read_text(encoding="utf-8"))["address"])
    except (ValueError, KeyError, OSError):
        return ""
