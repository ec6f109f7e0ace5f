"""Where a run's control socket lives, and how it is created without following a symlink.

The socket belongs in the private state folder, `<output_dir>/.orch-tui/control.sock`. A Unix
socket's path is limited to 108 bytes (sun_path), so a deep output folder gets its socket under
`$XDG_RUNTIME_DIR/orch-tui/` (or a private folder in the temp directory) named by a hash of the
output folder, and the state folder records where in `control.path` for clients to find it.

Binding goes through `/proc/self/fd/<folder descriptor>/<name>`: the folder is the one that was
checked (ours, private, not a symlink), whatever happens to the names above it, and that path is
always short."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import stat
import tempfile
from pathlib import Path

from orch_tui.core.errors import OrchError
from orch_tui.core.statedir import (PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, STATE_DIR_NAME, StateError,
                                    check_private)

SOCKET_NAME = "control.sock"
PATH_RECORD = "control.path"
#: sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def fits(path: Path) -> bool:
    """True when a client can connect to `path` by name."""
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def fallback_base() -> Path:
    """The private folder for sockets whose natural path is too long."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "orch-tui"
    return Path(tempfile.gettempdir()) / f"orch-tui-{os.geteuid()}"


def fallback_name(output_dir: Path) -> str:
    """The socket's name in the fallback folder: one per output folder."""
    digest = hashlib.sha256(os.fsencode(Path(output_dir).absolute())).hexdigest()
    return f"{digest[:24]}.sock"


def open_private_folder(path: Path) -> int:
    """Create `path` 0o700 (its parent must exist) or open it if it is ours and private;
    refuse a symlink or someone else's folder (StateError). Returns its descriptor."""
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StateError(f"{path}: cannot create the socket folder: {exc.strerror}") from None
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise StateError(f"{path}: cannot open the socket folder (a symlink?): "
                         f"{exc.strerror}") from None
    try:
        st = os.fstat(fd)
        check_private(st, path, directory=True)
        if stat.S_IMODE(st.st_mode) != PRIVATE_DIR_MODE:
            os.fchmod(fd, PRIVATE_DIR_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_stale(dir_fd: int, name: str, path: Path) -> None:
    """Unlink a leftover socket of ours at `name`; refuse anything else (StateError). The run
    holds the folder's lock, so a socket there is a dead run's."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid():
        raise StateError(f"{path}: exists and is not a socket of ours: refusing to replace it")
    os.unlink(name, dir_fd=dir_fd)


def bind_private(dir_fd: int, name: str, path: Path) -> socket.socket:
    """A listening Unix socket `name` in the folder `dir_fd`, mode 0o600 from its creation.

    It is bound under a name of its own and renamed once it listens: a client that finds
    `name` can connect (bound but not yet listening, a socket refuses, and `attach` or `status`
    would have said that no run answers while one was starting)."""
    pending = f".{name}.new"
    remove_stale(dir_fd, name, path)
    remove_stale(dir_fd, pending, path.with_name(pending))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The umask is the only way to create a socket file with a mode; the folder is private too.
    old = os.umask(0o177)
    try:
        sock.bind(f"/proc/self/fd/{dir_fd}/{pending}")
        sock.listen(16)
        os.rename(pending, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(pending, dir_fd=dir_fd)
        raise StateError(f"{path}: cannot create the control socket: {exc.strerror}") from None
    finally:
        os.umask(old)
    sock.setblocking(False)
    return sock


def record_path(state_fd: int, folder: Path, path: Path | None) -> None:
    """Write (or, for None, remove) `control.path` in the state folder `state_fd`: where a
    too-long socket path went. Never through a symlink, only a private file of ours."""
    if path is None:
        try:
            os.unlink(PATH_RECORD, dir_fd=state_fd)
        except FileNotFoundError:
            pass
        return
    try:
        fd = os.open(PATH_RECORD,
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     PRIVATE_FILE_MODE,
                     dir_fd=state_fd)
    except OSError as exc:
        raise StateError(f"{folder / PATH_RECORD}: cannot record the socket's path: "
                         f"{exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        check_private(os.fstat(fd), folder / PATH_RECORD, directory=False)
        handle.write(os.fsencode(path) + b"\n")


def find_socket(output_dir: Path) -> Path | None:
    """The control socket of the run in `output_dir` (None when no run serves one there);
    OrchError (exit 2, one line) when its state folder cannot be read."""
    state = Path(output_dir) / STATE_DIR_NAME
    direct = state / SOCKET_NAME
    try:
        if stat.S_ISSOCK(os.lstat(direct).st_mode):
            return direct
    except OSError:
        pass
    try:
        fd = os.open(state / PATH_RECORD, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
            return None
        raise OrchError(f"cannot read {state}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        recorded = Path(os.fsdecode(handle.read(4096).strip()))
    return recorded if recorded.is_absolute() else None
