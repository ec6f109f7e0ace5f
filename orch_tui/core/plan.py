"""Turn a config and an input list into concrete jobs (argv, output names, log files).

Everything a run or a `--dry-run` needs is computed here, up front and without touching the
disk, so output-name collisions are refused before a single job starts.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shlex
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

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
class JobLayout:
    """What every job of one plan shares: the binary, its flags, and where files go (as text:
    each job's paths are joined from these when asked for)."""
    binary: str
    flags: tuple[str, ...]
    uses_output: bool
    output_dir: str
    log_dir: str
    temp_dir: str


class JobSpec(NamedTuple):
    """One job: what runs (`argv`, writing to the temp name) and what to show (`display_argv`).

    Only the job's number, its input and its output's name are kept; the rest is derived from
    the plan's shared `JobLayout` when something asks (a launch, a dry run, a detail screen).
    So 100,000 jobs are planned in well under a second and held in a few tens of MiB, where
    four Paths and two argv tuples each took seconds and 170 MiB.

    The temporary output has the final output's own name (never longer, same extension for
    ffmpeg's muxer choice) inside this run's private folder `.orch-tui/tmp/<run token>/`."""
    job_id: int  # its place among the valid inputs, from 1 (GNU parallel's sequence number)
    entry: InputEntry
    output_name: str
    layout: JobLayout

    @property
    def name(self) -> str:
        """The input's file name, the label the UI shows."""
        return self.entry.name

    @property
    def input_path(self) -> Path:
        """The input, absolute."""
        return self.entry.path

    @property
    def input_size(self) -> int:
        """The input's size in bytes when it was listed."""
        return self.entry.size or 0

    @property
    def output_path(self) -> Path:
        """The final output: `<output_dir>/<stem><suffix><ext>`."""
        return Path(self.layout.output_dir, self.output_name)

    @property
    def temp_output_path(self) -> Path | None:
        """Where the command writes (None when its flags name no `{output_file}`)."""
        return Path(self.layout.temp_dir, self.output_name) if self.layout.uses_output else None

    @property
    def log_path(self) -> Path:
        """Its log, in the shard folder of its thousands (`logs/001/01234-clip.log`)."""
        return Path(self.log_location)

    @property
    def log_location(self) -> str:
        """`log_path` as text (what the journal stores, made without a Path)."""
        return _log_location(self.layout.log_dir, self.job_id, self.entry.name)

    @property
    def output_location(self) -> str:
        """`output_path` as text."""
        return _join(self.layout.output_dir, self.output_name)

    @property
    def argv(self) -> tuple[str, ...]:
        """What runs: the binary and its expanded flags, writing to the temporary output."""
        temp = self.temp_output_path
        return self._expand(str(temp) if temp is not None else self.output_location)

    @property
    def display_argv(self) -> tuple[str, ...]:
        """What the operator sees: the same command naming the final output."""
        return self._expand(self.output_location)

    def _expand(self, output_file: str) -> tuple[str, ...]:
        location = self.entry.location
        folder, _, name = location.rpartition("/")
        stem, extension = templates.split_name(name)
        values = {
            "input_file": location,
            "input_name": name,
            "input_stem": stem,
            "input_ext": extension,
            "input_dir": folder or "/",
            "output_dir": self.layout.output_dir,
            "index": str(self.job_id),
            "output_file": output_file,
        }
        return (self.layout.binary, ) + tuple(
            templates.expand(flag, values) for flag in self.layout.flags)


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


#: How `$'...'` writes the characters that have a short escape of their own.
_C_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _ansi_c(word: str) -> str:
    """`word` in `$'...'` quoting (bash, zsh, ksh, busybox sh; POSIX since 2024): the one
    quoting that writes a newline, a tab or any non-printing character as printable text which
    the shell turns back into the very bytes the job gets. Other characters that do not print go
    as the `\\xHH` of each byte (a name's undecodable bytes included)."""
    out = []
    for char in word:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        else:
            try:
                raw = os.fsencode(char)
            except UnicodeEncodeError:  # a lone surrogate no file name can hold
                raw = char.encode("utf-8", "surrogatepass")
            out.extend(f"\\x{byte:02x}" for byte in raw)
    return "$'" + "".join(out) + "'"


def shell_quote(argv: Sequence[str]) -> str:
    """The command as one copy-pasteable shell line (display only; nothing runs via a shell).
    A word with a character that does not print goes in `$'...'`, so the line is both safe on a
    terminal and, pasted into a shell, exactly the argv the job gets."""
    return " ".join(shlex.quote(word) if word.isprintable() else _ansi_c(word) for word in argv)


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


def _join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


#: Jobs per log shard folder: a run of 100,000 jobs makes 100 folders of 1,000 logs, not one
#: folder of 100,000 (which slows every listing, `ls` and file manager alike).
LOGS_PER_SHARD = 1000


def log_shard(index: int) -> str:
    """The shard folder of job `index`'s log: its thousands, three digits (`000` holds jobs
    1-999, `001` holds 1000-1999). Zero-padded so the folders sort as the jobs do, and equal to
    the leading digits of the five-digit log names inside, so `001/01234-clip.log` reads as job
    1234 at a glance."""
    return f"{index // LOGS_PER_SHARD:03d}"


@functools.lru_cache(maxsize=4096)
def _log_location(log_dir: str, job_id: int, name: str) -> str:
    """A job's log path: asked for by its launch, its probe, the guardian, the journal and its
    end, so it is made once per job rather than by each of them (the running jobs' stay in the
    cache, 100,000 queued ones never enter it)."""
    stem = safe_log_stem(templates.split_name(name)[0])
    return f"{log_dir}/{log_shard(job_id)}/{job_id:05d}-{stem}.log"


class _RealDirs(dict[str, str]):
    """`os.path.realpath` of folders, once per folder: 100,000 inputs usually live in a few."""

    def __missing__(self, folder: str) -> str:
        real = self[folder] = os.path.realpath(folder or "/")
        return real


def _writers(config: Config, inputs: InputList, outputs: list[tuple[InputEntry,
                                                                    str]]) -> dict[str, InputEntry]:
    """Each output name's input; refuses two inputs writing one output and an output name no
    filesystem accepts. Outputs are names in one folder: string checks, no disk."""
    seen: dict[str, InputEntry] = {}
    for entry, name in outputs:
        other = seen.get(name)
        if other is not None:
            output = _join(str(config.directories.output_dir), name)
            raise _refuse(
                config, "directories.output_suffix",
                f"{inputs.path} line {other.line} ({other.location}) and line {entry.line} "
                f"({entry.location}) would both write {output}; rename one input or list only one")
        seen[name] = entry
        if name == STATE_DIR_NAME:
            raise _refuse(
                config, "directories.output_suffix",
                f"{inputs.path} line {entry.line} ({entry.location}): the output name {name} is "
                "the run's own state folder; rename the input or set output_suffix")
        size = len(os.fsencode(name))
        if size > NAME_MAX:
            raise _refuse(
                config, "directories.output_suffix",
                f"{inputs.path} line {entry.line} ({entry.location}): the output name {name} "
                f"is {size} bytes, longer than the {NAME_MAX} a file name may have; shorten the "
                "input name or output_suffix")
    return seen


def _check_victims(config: Config, inputs: InputList, seen: dict[str, InputEntry],
                   present: frozenset[str]) -> None:
    """Refuse any output that would replace an input: both are the same file when they have
    the same name in the same real folder (one realpath per folder, not one per path: that was
    a million lstat calls for 100,000 inputs), or, for the outputs already on disk (`present`),
    the same inode as a listed input, which also covers inputs and outputs that are symlinks."""
    real = _RealDirs()
    out_dir = real[str(config.directories.output_dir)]
    by_inode = _by_inode(seen, present, str(config.directories.output_dir))
    for victim in inputs.entries:
        folder, _, name = victim.location.rpartition("/")
        writer = seen.get(name) if real[folder] == out_dir else None
        if writer is None and by_inode:
            writer = _writer_of(victim, by_inode)
        if writer is not None:
            raise _refuse(
                config, "directories.output_dir",
                f"the output for line {writer.line} ({writer.location}) would overwrite the "
                f"input on line {victim.line} ({victim.location}); choose another output_dir or "
                "set output_suffix")


def _by_inode(writers: dict[str, InputEntry], present: frozenset[str],
              output_dir: str) -> dict[tuple[int, int], InputEntry]:
    """The jobs whose output is already on disk, by the (device, inode) of that file."""
    found: dict[tuple[int, int], InputEntry] = {}
    for name in present:
        try:
            info = os.stat(_join(output_dir, name))
        except OSError:
            continue
        found[(info.st_dev, info.st_ino)] = writers[name]
    return found


def _writer_of(victim: InputEntry, by_inode: dict[tuple[int, int], InputEntry]) -> \
        InputEntry | None:
    """The job whose existing output is the file `victim` names (through any symlinks)."""
    try:
        info = os.stat(victim.location)
    except OSError:
        return None
    return by_inode.get((info.st_dev, info.st_ino))


def _present(output_dir: Path, names: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    """Which of `names` exist in `output_dir` (following symlinks, as a run's skip does), and
    which of those are folders: one listing of the folder instead of a stat per job."""
    try:
        listed = set(os.listdir(output_dir))
    except FileNotFoundError:
        return frozenset(), frozenset()
    except OSError:
        listed = set(names)  # unlistable: ask name by name
    files: set[str] = set()
    folders: set[str] = set()
    for name in names:
        if name in listed:
            try:
                info = os.stat(_join(str(output_dir), name))
            except OSError:
                continue
            (folders if stat.S_ISDIR(info.st_mode) else files).add(name)
    return frozenset(files), frozenset(folders)


def _check_folders(config: Config, inputs: InputList, writers: dict[str, InputEntry],
                   folders: frozenset[str]) -> None:
    """Refuse an output name a folder already holds: the job's work could never be renamed
    there, and counting the folder as its output would skip the job for good."""
    if folders:
        name = min(folders, key=lambda found: writers[found].line)
        entry = writers[name]
        raise _refuse(
            config, "directories.output_dir",
            f"{inputs.path} line {entry.line} ({entry.location}): its "
            f"output {_join(str(config.directories.output_dir), name)} is a folder; move it "
            "away or set output_suffix")


def build_plan(config: Config, inputs: InputList, *, run_token: str | None = None) -> Plan:
    """One JobSpec per valid unique input, numbered 1..N in list order; creates nothing.

    `run_token` names this run's temporary folder (a fresh random one by default: every plan
    is one run, and two runs never share temporary names)."""
    token = run_token or secrets.token_hex(8)
    flags = tuple(config.binary.flags)
    used = frozenset[str]().union(*(templates.check_template(flag) for flag in flags))
    output_dir = config.directories.output_dir
    layout = JobLayout(binary=str(config.binary.path),
                       flags=flags,
                       uses_output="output_file" in used,
                       output_dir=str(output_dir),
                       log_dir=str(output_dir / STATE_DIR_NAME / LOGS_DIR_NAME),
                       temp_dir=str(output_dir / STATE_DIR_NAME / TMP_DIR_NAME / token))
    suffix = config.directories.output_suffix
    outputs = [(entry, templates.output_name(entry.name, suffix)) for entry in inputs.valid]
    present, folders = _present(output_dir, [name for _, name in outputs])
    writers = _writers(config, inputs, outputs)
    _check_folders(config, inputs, writers, folders)
    _check_victims(config, inputs, writers, present)
    jobs = tuple(
        JobSpec(index, entry, name, layout) for index, (entry, name) in enumerate(outputs, start=1))
    existing = frozenset(job.job_id for job in jobs if job.output_name in present)
    return Plan(config=config, inputs=inputs, jobs=jobs, existing=existing, run_token=token)


def load_plan(path: str | Path, progress: Callable[[int, int], None] | None = None) -> Plan:
    """Config, input list and plan, as every front end loads them: each problem raises a
    located ConfigError. `progress` follows the reading of the list (read_input_list)."""
    config = load_config(path)
    return build_plan(config, read_input_list(config.directories.input_file_list, progress))
