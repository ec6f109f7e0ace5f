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
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core.errors import ConfigError
from orch_tui.core.fsutil import TextFileWords, read_text_file

KEY = "directories.input_file_list"
_MISSING_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG})


@dataclass(frozen=True)
class InputEntry:
    """One listed input; `problem` is None, "missing", "directory" or "unreadable"."""
    line: int
    raw: str
    path: Path
    size: int | None
    problem: str | None


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

    @property
    def valid(self) -> tuple[InputEntry, ...]:
        """Entries that can become jobs."""
        return tuple(entry for entry in self.entries if entry.problem is None)

    @property
    def problems(self) -> tuple[InputEntry, ...]:
        """Entries that are skipped (missing, directory, unreadable)."""
        return tuple(entry for entry in self.entries if entry.problem is not None)

    @property
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


def _resolve(raw: str, folder: Path) -> Path:
    """Absolute, normalised path; symlinks are deliberately not resolved."""
    return Path(os.path.abspath(folder / os.path.expanduser(raw)))


def _inspect(path: Path) -> tuple[int | None, str | None]:
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


def read_input_list(path: str | Path) -> InputList:
    """Parse the input list at `path`.

    One path a line; relative paths resolve against the list's folder and `~` is expanded.
    Only the line ending (LF or CRLF) is removed, so inner, leading and trailing spaces are part
    of the name; when the exact name does not exist but the whitespace-trimmed one does, the
    trimmed one is used (stray editor spaces are far more common than names ending in spaces).
    Lines that are blank or whitespace-only, and lines whose first non-blank character is `#`,
    are skipped. Missing, directory and unreadable entries are recorded, not raised; a repeated
    path is recorded as a Duplicate and kept once.
    """
    list_path = Path(os.path.abspath(os.path.expanduser(path)))
    text = _read_text(list_path)
    if not text.strip():
        raise _error("input list is empty; list one input file per line", list_path)
    folder = list_path.parent
    entries: list[InputEntry] = []
    duplicates: list[Duplicate] = []
    first_line: dict[Path, int] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        raw = line.removesuffix("\r")
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        resolved = _resolve(raw, folder)
        if stripped != raw and not os.path.lexists(resolved):
            trimmed = _resolve(stripped, folder)
            if os.path.lexists(trimmed):
                resolved = trimmed
        if resolved in first_line:
            duplicates.append(Duplicate(line=number, first_line=first_line[resolved],
                                        path=resolved))
            continue
        first_line[resolved] = number
        size, problem = _inspect(resolved)
        entries.append(InputEntry(line=number, raw=raw, path=resolved, size=size, problem=problem))
    if not entries:
        raise _error("input list names no files (only blank lines and # comments)", list_path)
    return InputList(path=list_path, entries=tuple(entries), duplicates=tuple(duplicates))
