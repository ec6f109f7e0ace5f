"""A job's output: written under this run's own temporary folder, renamed to its final name only
on success, never taken from anywhere else."""

from __future__ import annotations

import os

from orch_tui.core.plan import JobSpec
from orch_tui.core.statedir import RunTemp, StateDir


def publish_output(temp: RunTemp, state: StateDir, spec: JobSpec) -> str:
    """Rename the job's output from the run's temporary folder to its final name; returns why
    not, or ''."""
    assert spec.layout.uses_output
    name = spec.output_name  # the temporary output has the final one's name
    if not temp.is_regular(name):
        if os.path.lexists(os.path.join(temp.path, name)):
            return "output is not a plain file (a symlink or folder?): not kept"
        return "no output: exit 0 but nothing written"
    try:
        os.replace(name, name, src_dir_fd=temp.fd, dst_dir_fd=state.out_fd)
    except OSError as exc:
        return f"cannot rename output: {exc.strerror}"
    return ""


def unlink_temp(temp: RunTemp | None, spec: JobSpec) -> None:
    """Drop what a failed, killed or restarted attempt left half-written."""
    if spec.layout.uses_output and temp is not None:
        temp.unlink(spec.output_name)
