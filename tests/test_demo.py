"""The demo as a user meets it: the workspace loads through the real config path and
`orch-tui --demo` runs it end to end (the worker itself: test_demo_worker.py)."""

from __future__ import annotations

import subprocess
import sys

import yaml

from orch_tui.core.plan import load_plan
from orch_tui.demo.workspace import write_demo_workspace


def test_workspace_is_a_valid_seed_config(tmp_path):
    config = write_demo_workspace(tmp_path / "demo", count=12)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert set(data["binary"]) == {"path", "flags"}
    assert {"input_file_list", "output_dir", "output_suffix"} <= set(data["directories"])
    plan = load_plan(config)
    assert len(plan.jobs) == 12 and not plan.inputs.problems
    names = [job.name for job in plan.jobs]
    assert "holiday clip 03.mp4" in names
    assert sum("corrupt" in name for name in names) == 2


def test_demo_command_runs_the_workspace(tmp_path):
    result = subprocess.run([sys.executable, "-m", "orch_tui", "--demo",
                             str(tmp_path / "d")],
                            capture_output=True,
                            text=True,
                            timeout=120,
                            check=False)
    # Two inputs fail on purpose, so the run ends with exit code 1 and says so.
    assert result.returncode == 1, result.stderr
    assert "done: 10 succeeded, 2 failed" in result.stdout
    outputs = sorted(p.name for p in (tmp_path / "d" / "output").glob("*_demo.mp4"))
    assert len(outputs) == 10 and "holiday clip 03_demo.mp4" in outputs
