"""Read the input file list: one path a line, checked up front so problems show before any job.

Line rules (see `read_input_list`): only the line ending is removed, because a file name may
legitimately start or end with spaces; whitespace-only lines and `#` comments are skipped.
Every path becomes absolute, so an input called `-rf.mp4` reaches the command as `/dir/-rf.mp4`
and can never be mistaken for an option.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from orch_tui.core.errors import ConfigError
from orch_tui.core.fsutil import TextFileWords, absolute, read_text_file

KEY = "directories.input_file_list"
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG})


class InputEntry(NamedTuple):
    """One listed input; `problem` is None, "missing", "directory" or "unreadable".

    A tuple holding the path as text: 100,000 inputs are read in a fraction of a second and
    kept in a few MiB, where a Path each (and a dataclass each) cost seconds and tens of MiB;
    `path` makes the Path for the few places that want one."""
    line: int
    raw: str
    location: str  # absolute and normalised, symlinks not resolved (but before a `..`)
    size: int | None
    problem: str | None

    @property
    def path(self) -> Path:
        """The input as a Path."""
        return Path(self.location)

    @property
    def name(self) -> str:
        """Its file name."""
        return self.location.rpartition("/")[2]


@dataclass(frozen=True)
class Duplicate:
    """A later line naming a path already listed; it is reported and run only once."""
    line: int
    first_line: int
    path: Path


@dataclass(frozen=True)
class InputList:
    """The parsed list: unique entries in list order, plus the duplicates that were dropped."""
    path: Path
    entries: tuple[InputEntry, ...]
    duplicates: tuple[Duplicate, ...] = ()

    @cached_property
    def valid(self) -> tuple[InputEntry, ...]:
        """Entries that can become jobs (worked out once: a plan asks several times)."""
        return tuple(entry for entry in self.entries if entry.problem is None)

    @cached_property
    def problems(self) -> tuple[InputEntry, ...]:
        """Entries that are skipped (missing, directory, unreadable)."""
        return tuple(entry for entry in self.entries if entry.problem is not None)

    @cached_property
    def total_size(self) -> int:
        """Bytes of all valid inputs (for progress and disk estimates)."""
        return sum(entry.size or 0 for entry in self.valid)


def _error(message: str, path: Path, line: int | None = None) -> ConfigError:
    return ConfigError(message, path=path, line=line, key=KEY)


_INPUT_LIST = TextFileWords(directory="input list is a directory, not a file",
                            not_regular="input list is not a regular file",
                            not_found="input list not found",
                            cannot_read="cannot read input list",
                            bad_name="invalid input list file name",
                            not_utf8="input list is not valid UTF-8",
                            binary="input list contains NUL bytes; it looks like a binary file, "
                            "not a text list of paths")


def _read_text(path: Path) -> str:
    """The list's text; binary files, bad encodings and unreadable files are ConfigErrors."""
    return read_text_file(path, _INPUT_LIST,
                          lambda message, line, _column: _error(message, path, line))


def _resolve(raw: str, folder: str) -> str:
    """Absolute, normalised path; symlinks are deliberately not resolved, but for the folders
    before a `..`, which the kernel reads through them (fsutil.absolute). Most lines
    (`/media/a.mp4`, `in/b.mp4`) need no normalising and skip it, the most expensive step of a
    line."""
    if raw[0] == "~":
        raw = os.path.expanduser(raw)
    joined = raw if raw[0] == "/" else f"{folder}/{raw}"
    if "//" in joined or "/./" in joined or "/../" in joined or joined.endswith(("/", "/.", "/..")):
        return absolute(joined)
    return joined


def _place(raw: str, stripped: str, folder: str) -> str:
    """The path a line names: as written, or trimmed of stray spaces when only that exists."""
    resolved = _resolve(raw, folder)
    if stripped != raw and not os.path.lexists(resolved):
        trimmed = _resolve(stripped, folder)
        if os.path.lexists(trimmed):
            return trimmed
    return resolved


def _inspect(path: str) -> tuple[int | None, str | None]:
    """(size, problem) for one input, following symlinks as the command will."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return None, "missing" if exc.errno in _MISSING_ERRNOS else "unreadable"
    if stat.S_ISDIR(info.st_mode):
        return None, "directory"
    if not os.access(path, os.R_OK):
        return None, "unreadable"
    return info.st_size, None


#: Lines between two calls of read_input_list's `progress`.
PROGRESS_EVERY = 5000


def _parse(lines: list[str], folder: str,
           progress: Callable[[int, int], None] | None) -> tuple[list[InputEntry], list[Duplicate]]:
    """The entries and duplicates of the list's lines (see read_input_list)."""
    entries: list[InputEntry] = []
    duplicates: list[Duplicate] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number, len(lines))
        raw = line.removesuffix("\r")
        stripped = raw.strip()
        if not stripped or stripped[0] == "#":
            continue
        resolved = _place(raw, stripped, folder)
        if resolved in first_line:
            duplicates.append(
                Duplicate(line=number, first_line=first_line[resolved], path=Path(resolved)))
            continue
        first_line[resolved] = number
        size, problem = _inspect(resolved)
        entries.append(InputEntry(number, raw, resolved, size, problem))
    if progress is not None:
        progress(len(lines), len(lines))
    return entries, duplicates


def read_input_list(path: str | Path,
                    progress: Callable[[int, int], None] | None = None) -> InputList:
    """Parse the input list at `path`.

    One path a line; relative paths resolve against the list's folder and `~` is expanded.
    Only the line ending (LF or CRLF) is removed, so inner, leading and trailing spaces are part
    of the name; when the exact name does not exist but the whitespace-trimmed one does, the
    trimmed one is used (stray editor spaces are far more common than names ending in spaces).
    Lines that are blank or whitespace-only, and lines whose first non-blank character is `#`,
    are skipped. Missing, directory and unreadable entries are recorded, not raised; a repeated
    path is recorded as a Duplicate and kept once. `progress(lines done, lines)` is called
    every PROGRESS_EVERY lines and at the end (a screen's progress bar over a long list).
    """
    list_path = Path(absolute(os.path.expanduser(path)))
    text = _read_text(list_path)
    if not text.strip():
        raise _error("input list is empty; list one input file per line", list_path)
    # The list's lines: a final newline ends the last line, it starts no empty one (a progress
    # of 100,001 lines for a list of 100,000).
    lines = text.removesuffix("\n").split("\n")
    entries, duplicates = _parse(lines, str(list_path.parent).rstrip("/"), progress)
    if not entries:
        raise _error("input list names no files (only blank lines and # comments)", list_path)
    return InputList(path=list_path, entries=tuple(entries), duplicates=tuple(duplicates))
