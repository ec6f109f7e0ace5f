"""Keeping each job's whole process tree findable and killable, even the parts that left it.

A descendant that calls setsid or double-forks leaves the job's process group and, once its
parent exits, the job's process tree: signalling the group misses it and it outlives the job.
Two ways to keep such processes, chosen once per runner (ORCH_TUI_CONTAINMENT=auto|cgroup|
subreaper, default auto: cgroup when it works here):

* `CgroupContainment`: one cgroup v2 group per job attempt, under a run group inside the
  orchestrator's own group (jobs never leave a container's limits). Leaving a cgroup takes
  privileges no job has, and `cgroup.kill` kills every member at once.
* `SubreaperContainment`: PR_SET_CHILD_SUBREAPER makes our jobs' orphans our children, and
  every job carries ORCH_TUI_JOB=<run token>:<job id> in its environment, so a daemon that
  setsid'd and was reparented to us is still known as the job's. A process that clears its
  environment and leaves the process group escapes it.

The modules: `base` (the interface and shared helpers), `cgroup`, `subreaper`.
"""

from __future__ import annotations

import os
from pathlib import Path

from orch_tui.core.containment.base import (MARKER_VARIABLE, MODE_VARIABLE, MODES, ROOT_VARIABLE,
                                            Containment, ContainmentError, append_note,
                                            left_behind_note)
from orch_tui.core.containment.cgroup import CgroupContainment, find_cgroup2
from orch_tui.core.containment.subreaper import SubreaperContainment

__all__ = [
    "MARKER_VARIABLE", "MODE_VARIABLE", "MODES", "ROOT_VARIABLE", "CgroupContainment",
    "Containment", "ContainmentError", "SubreaperContainment", "append_note", "find_cgroup2",
    "left_behind_note", "select_containment"
]


def select_containment(run_token: str,
                       mode: str | None = None,
                       *,
                       root: Path | None = None) -> Containment:
    """The containment ORCH_TUI_CONTAINMENT (or `mode`) asks for; auto prefers cgroups.

    ORCH_TUI_CGROUP_ROOT (or `root`) replaces the cgroup v2 mount found in mountinfo."""
    if mode is None:
        mode = os.environ.get(MODE_VARIABLE, "") or "auto"
    if mode not in MODES:
        raise ContainmentError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
    if root is None and os.environ.get(ROOT_VARIABLE):
        root = Path(os.environ[ROOT_VARIABLE])
    if mode != "subreaper":
        try:
            return CgroupContainment.create(run_token, root)
        except ContainmentError as exc:
            if mode == "cgroup":
                raise ContainmentError(f"{MODE_VARIABLE}=cgroup: {exc}") from None
    return SubreaperContainment(run_token)
