"""Turn a config and an input list into concrete jobs (argv, output names, log files).

Everything a run or a `--dry-run` needs is computed here, up front and without touching the
disk, so output-name collisions are refused before a single job starts.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core import templates
from orch_tui.core.config import Config, load_config
from orch_tui.core.errors import ConfigError
from orch_tui.core.inputs import InputEntry, InputList, read_input_list
from orch_tui.core.statedir import LOGS_DIR_NAME, STATE_DIR_NAME, TMP_DIR_NAME
from orch_tui.core.textutil import printable

#: The longest file name (bytes) Linux filesystems accept.
NAME_MAX = 255
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_LOG_STEM = 60


@dataclass(frozen=True)
# pylint: disable-next=too-many-instance-attributes  # a record: one field per fact of a job
class JobSpec:
    """One job: what runs (`argv`, writing to the temp name) and what to show (`display_argv`).

    The temporary output has the final output's own name (never longer, same extension for
    ffmpeg's muxer choice) inside this run's private folder `.orch-tui/tmp/<run token>/`."""
    job_id: int
    index: int
    input_path: Path
    input_size: int
    output_path: Path
    temp_output_path: Path | None
    argv: tuple[str, ...]
    display_argv: tuple[str, ...]
    log_path: Path

    @property
    def name(self) -> str:
        """The input's file name, the label the UI shows."""
        return self.input_path.name


@dataclass(frozen=True)
class Plan:
    """All jobs of a run; `existing` are jobs whose final output is already on disk."""
    config: Config
    inputs: InputList
    jobs: tuple[JobSpec, ...]
    existing: frozenset[int]
    run_token: str = ""

    @property
    def state_dir(self) -> Path:
        """`<output_dir>/.orch-tui`: logs, journal and lock live next to the outputs."""
        return self.config.directories.output_dir / STATE_DIR_NAME

    @property
    def run_temp_dir(self) -> Path:
        """This run's private folder of temporary outputs."""
        return self.state_dir / TMP_DIR_NAME / self.run_token


def safe_log_stem(stem: str) -> str:
    """A file-name-safe, bounded version of an input stem (never empty)."""
    return _UNSAFE.sub("_", stem)[:_MAX_LOG_STEM] or "input"


def shell_quote(argv: Sequence[str]) -> str:
    """The command as one copy-pasteable shell line (display only; nothing runs via a shell)."""
    return shlex.join(argv)


def _where(config: Config, *keys: str) -> tuple[int | None, int | None]:
    for key in keys:
        location = config.key_location(key)
        if location is not None:
            return location
    return None, None


def _refuse(config: Config, key: str, message: str) -> ConfigError:
    """A located error at `key` (or the nearest section that exists in the file)."""
    line, column = _where(config, key, "directories")
    return ConfigError(printable(message), path=config.path, line=line, column=column, key=key)


def _check_outputs(config: Config, inputs: InputList, outputs: list[tuple[InputEntry,
                                                                          Path]]) -> None:
    """Refuse two inputs writing one output, an output name no filesystem accepts, and any
    output that would replace an input."""
    seen: dict[Path, InputEntry] = {}
    for entry, output in outputs:
        other = seen.get(output)
        if other is not None:
            raise _refuse(
                config, "directories.output_suffix",
                f"{inputs.path} line {other.line} ({other.path}) and line {entry.line} "
                f"({entry.path}) would both write {output}; rename one input or list only one")
        seen[output] = entry
        size = len(os.fsencode(output.name))
        if size > NAME_MAX:
            raise _refuse(
                config, "directories.output_suffix",
                f"{inputs.path} line {entry.line} ({entry.path}): the output name {output.name} "
                f"is {size} bytes, longer than the {NAME_MAX} a file name may have; shorten the "
                "input name or output_suffix")
    listed = {os.path.realpath(entry.path): entry for entry in inputs.entries}
    for entry, output in outputs:
        victim = listed.get(os.path.realpath(output))
        if victim is not None:
            raise _refuse(
                config, "directories.output_dir",
                f"the output for line {entry.line} ({entry.path}) would overwrite the input on "
                f"line {victim.line} ({victim.path}); choose another output_dir or set "
                "output_suffix")


#: Jobs per log shard folder: a run of 100,000 jobs makes 100 folders of 1,000 logs, not one
#: folder of 100,000 (which slows every listing, `ls` and file manager alike).
LOGS_PER_SHARD = 1000


def log_shard(index: int) -> str:
    """The shard folder of job `index`'s log: its thousands, three digits (`000` holds jobs
    1-999, `001` holds 1000-1999). Zero-padded so the folders sort as the jobs do, and equal to
    the leading digits of the five-digit log names inside, so `001/01234-clip.log` reads as job
    1234 at a glance."""
    return f"{index // LOGS_PER_SHARD:03d}"


@dataclass(frozen=True)
class _Layout:
    """What every job of one plan shares: the binary, its flags, and where files go."""
    binary: str
    flags: tuple[str, ...]
    uses_output: bool
    output_dir: Path
    log_dir: Path
    temp_dir: Path

    def spec(self, index: int, entry: InputEntry, output: Path) -> JobSpec:
        """Job `index`: the argv it runs (temporary output) and the one it shows (final)."""
        temp = self.temp_dir / output.name if self.uses_output else None
        values = {
            "input_file": str(entry.path),
            "input_name": entry.path.name,
            "input_stem": entry.path.stem,
            "input_ext": entry.path.suffix,
            "input_dir": str(entry.path.parent),
            "output_dir": str(self.output_dir),
            "index": str(index),
            "output_file": str(output),
        }
        display = tuple(templates.expand(flag, values) for flag in self.flags)
        if temp is not None:
            values["output_file"] = str(temp)
        argv = tuple(templates.expand(flag, values) for flag in self.flags)
        return JobSpec(job_id=index,
                       index=index,
                       input_path=entry.path,
                       input_size=entry.size or 0,
                       output_path=output,
                       temp_output_path=temp,
                       argv=(self.binary, ) + argv,
                       display_argv=(self.binary, ) + display,
                       log_path=self.log_dir / log_shard(index) /
                       f"{index:05d}-{safe_log_stem(entry.path.stem)}.log")


def build_plan(config: Config, inputs: InputList, *, run_token: str | None = None) -> Plan:
    """One JobSpec per valid unique input, numbered 1..N in list order; creates nothing.

    `run_token` names this run's temporary folder (a fresh random one by default: every plan
    is one run, and two runs never share temporary names)."""
    token = run_token or secrets.token_hex(8)
    flags = tuple(config.binary.flags)
    used = frozenset[str]().union(*(templates.check_template(flag) for flag in flags))
    output_dir = config.directories.output_dir
    layout = _Layout(binary=str(config.binary.path),
                     flags=flags,
                     uses_output="output_file" in used,
                     output_dir=output_dir,
                     log_dir=output_dir / STATE_DIR_NAME / LOGS_DIR_NAME,
                     temp_dir=output_dir / STATE_DIR_NAME / TMP_DIR_NAME / token)
    suffix = config.directories.output_suffix
    outputs = [(entry, templates.output_path(entry.path, output_dir, suffix))
               for entry in inputs.valid]
    _check_outputs(config, inputs, outputs)
    jobs = tuple(
        layout.spec(index, entry, output) for index, (entry, output) in enumerate(outputs, start=1))
    existing = frozenset(job.job_id for job in jobs if os.path.exists(job.output_path))
    return Plan(config=config, inputs=inputs, jobs=jobs, existing=existing, run_token=token)


def load_plan(path: str | Path) -> Plan:
    """Config, input list and plan, as every front end loads them: each problem raises a
    located ConfigError."""
    config = load_config(path)
    return build_plan(config, read_input_list(config.directories.input_file_list))
