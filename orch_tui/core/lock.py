"""One orchestrator per output folder, whatever happens to the state folder.

Two flocks: one on the output folder itself (the authority: deleting or replacing
`.orch-tui/` cannot release it), one on `.orch-tui/lock`, which also holds the pid for the
refusal message and covers filesystems that cannot flock a folder. flock is released by the
kernel when its holder dies (even by `kill -9`), so a lock is never stale.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from orch_tui.core.errors import LockError
from orch_tui.core.statedir import STATE_DIR_NAME, StateDir, UnsafeFileError

LOCK_NAME = "lock"


def holder_of(fd: int) -> int | None:
    """The pid holding a flock on the file open at `fd`, from /proc/locks (None if unknown)."""
    return _flock_holder(os.fstat(fd))


def held_by(output_dir: Path) -> int | None:
    """The pid of another orchestrator holding `output_dir` (None when free, or unknown).

    Read from /proc/locks, never by trying the lock: a probe that took it, even for an
    instant, could make an orchestrator starting at that moment refuse to run."""
    # The folder as the lock opens it (through a link), the state folder's lock file as
    # StateDir does (never through one).
    for path, follow in ((output_dir, True), (output_dir / STATE_DIR_NAME / LOCK_NAME, False)):
        try:
            st = os.stat(path, follow_symlinks=follow)
        except OSError:
            continue
        holder = _flock_holder(st)
        if holder is not None and holder != os.getpid():
            return holder
    return None


def _flock_holder(st: os.stat_result) -> int | None:
    """The pid holding a flock on the file `st` describes, from /proc/locks."""
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii") as handle:
            for line in handle:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == wanted:
                    return int(fields[4])
    except (OSError, ValueError):
        return None
    return None


class RunLock:
    """Exclusive ownership of an output folder for the lifetime of a run: `acquire_folder()`
    before the state folder is touched, `acquire_file(state)` once it is open."""

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.path = output_dir / STATE_DIR_NAME / LOCK_NAME
        self._fds: list[int] = []

    def _refuse(self, fd: int) -> LockError:
        holder = holder_of(fd)
        if holder is None:
            try:
                text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            except OSError:
                text = ""
            holder_text = text or "unknown"
        else:
            holder_text = str(holder)
        return LockError(f"{self.output_dir}: another orch-tui (pid {holder_text}) is "
                         "running on this output folder; wait for it or stop it")

    def acquire_folder(self) -> None:
        """Create the output folder if needed and flock it, or raise LockError naming the
        holder; nothing else is created."""
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            folder = os.open(self.output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise LockError(f"{self.output_dir}: cannot create the output folder: "
                            f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = self._refuse(folder)
            os.close(folder)
            raise error from None
        except OSError:
            os.close(folder)  # this filesystem cannot flock a folder: the file lock remains
        else:
            self._fds.append(folder)

    def acquire_file(self, state: StateDir) -> None:
        """Take `.orch-tui/lock` too and write our pid into it (LockError when impossible)."""
        try:
            fd = state.open_file(LOCK_NAME, os.O_RDWR)
        except UnsafeFileError as exc:
            self.release()
            raise LockError(str(exc)) from None
        except OSError as exc:
            self.release()
            raise LockError(f"{self.path}: cannot create the lock: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = self._refuse(fd)
            os.close(fd)
            self.release()
            raise error from None
        self._fds.append(fd)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            self.release()
            raise LockError(f"{self.path}: cannot write the lock: {exc.strerror}") from None

    def release(self) -> None:
        """Give the folder up (the file stays; only the flocks matter)."""
        while self._fds:
            os.close(self._fds.pop())
