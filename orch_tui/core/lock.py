"""One orchestrator per output folder: a flock on `<output_dir>/.orch-tui/lock`.

flock is released by the kernel when its holder dies (even by `kill -9`), so a stale lock file
never blocks the next run; the pid written into it names the holder in the refusal."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from orch_tui.core.errors import LockError


class RunLock:
    """Exclusive ownership of a state folder for the lifetime of a run."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockError naming the pid that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o664)  # never world-writable
        except OSError as exc:
            raise LockError(f"{self.path}: cannot create the lock: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockError(f"{self.path.parent.parent}: another orch-tui (pid {holder}) is "
                            "running on this output folder; wait for it or stop it") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as exc:
            os.close(fd)
            raise LockError(f"{self.path}: cannot write the lock: {exc.strerror}") from None
        self._fd = fd

    def release(self) -> None:
        """Give the folder up (the file stays; only the flock matters)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
