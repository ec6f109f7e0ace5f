"""Small filesystem helpers shared by the core and every front end.

They use `os` functions rather than `Path` methods where it matters: `os.path.exists` answers
False instead of raising on odd paths (a name longer than NAME_MAX, a folder that cannot be
searched), which is what a check made before anything is created needs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orch_tui.core.errors import ConfigError


def absolute(path: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> str:
    """`path` (relative to `folder`, else the working folder) absolute and normalised as the
    kernel reads it. `os.path.abspath` drops `link/..` as text, naming the file beside the link,
    where the kernel steps back out of the folder the link leads to; so the folders before a
    `..` are resolved (realpath), and a path without one keeps its symlinks."""
    text = os.fspath(path)
    if not text.startswith("/"):
        text = f"{os.fspath(folder) if folder is not None else os.getcwd()}/{text}"
    if "/../" not in text and not text.endswith("/.."):
        return os.path.normpath(text)
    head, _, tail = text.rpartition("/")
    if tail in ("", ".", ".."):
        return os.path.realpath(text)
    return f"{os.path.realpath(head or '/').rstrip('/')}/{tail}"


def existing_ancestor(path: Path) -> Path:
    """`path` if it exists, else the nearest folder above it that does: where a not-yet-created
    output folder would live (and whose filesystem it would fill)."""
    current = path
    while not os.path.exists(current) and current != current.parent:
        current = current.parent
    return current


def file_size(path: os.PathLike[str] | str | None) -> int:
    """The file's size in bytes; 0 when there is no path or it cannot be stat'ed (yet)."""
    if path is None:
        return 0
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class TextFileWords:
    """What each failure of `read_text_file` says, in the words of one kind of file."""

    directory: str  # the path is a folder
    not_regular: str  # a FIFO, socket or device (reading a FIFO would block forever)
    not_found: str
    cannot_read: str  # followed by ": permission denied" or ": <the OS's reason>"
    bad_name: str  # a NUL byte in the path
    not_utf8: str  # followed by " (byte 0x..); save it as UTF-8"
    binary: str | None = None  # refuse NUL bytes with this message; None lets them through


#: Builds the error for a message and its 1-based (line, column), either of which may be None.
ErrorFactory = Callable[[str, int | None, int | None], ConfigError]


def read_text_file(path: Path, words: TextFileWords, error: ErrorFactory) -> str:
    """A regular file's UTF-8 text, byte order mark removed; raises `error(...)` saying why
    it cannot be read (not found, a folder, unreadable, binary, not UTF-8)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise error(words.directory, None, None)
        if not stat.S_ISREG(info.st_mode):
            raise error(words.not_regular, None, None)
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise error(words.not_found, None, None) from None
    except PermissionError:
        raise error(f"{words.cannot_read}: permission denied", None, None) from None
    except OSError as exc:
        raise error(f"{words.cannot_read}: {exc.strerror}", None, None) from None
    except ValueError:  # a NUL byte in the path
        raise error(words.bad_name, None, None) from None
    if words.binary is not None and (nul := data.find(b"\0")) != -1:
        raise error(words.binary, data.count(b"\n", 0, nul) + 1, None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{words.not_utf8} (byte 0x{data[exc.start]:02x}); save it as UTF-8", line,
                    column) from None
    return text.removeprefix("\ufeff")
