"""The private state folder `<output_dir>/.orch-tui/`, held open by descriptor.

Everything orch-tui writes for itself (logs, run.log, the lock, temporary outputs) is opened
relative to a directory descriptor that was checked once: the folder is ours, mode 0o700 and
not a symlink, and every file is opened with O_NOFOLLOW and checked to be a plain file of ours
with one link. A symlink or hard link planted at any of those names is refused instead of
followed, so nothing is ever written outside the output folder.

Temporary outputs live in a folder of their own per run, `tmp/<run token>/`, flocked by that
run for its lifetime: a preflight deletes only folders whose flock it can take (their run is
provably dead), and a job's output is renamed only from its own run's folder.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from pathlib import Path

from orch_tui.core.errors import OrchError

STATE_DIR_NAME = ".orch-tui"
LOGS_DIR_NAME = "logs"
TMP_DIR_NAME = "tmp"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Errors that concern the folder or the machine, not one job: stop launching, keep the job.
SYSTEMIC_ERRNOS = frozenset({
    errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE, errno.EACCES, errno.EPERM,
    errno.ENOENT, errno.EIO, errno.ENOMEM, errno.EAGAIN, errno.ESTALE
})


class StateError(OrchError):
    """The state folder cannot be used safely (not ours, not private, a symlink, unwritable)."""

    exit_code = 2


class UnsafeFileError(OrchError):
    """A file orch-tui would write is a symlink, a hard link, not a plain file or not ours."""

    exit_code = 2


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_private(st: os.stat_result,
                  path: str | Path,
                  *,
                  directory: bool,
                  error: type[OrchError] | None = None) -> None:
    """Refuse (one line) a symlink, what another user owns or others may write, a file with
    hard links: raise `error`, by default StateError for a folder, UnsafeFileError for a file.
    `st` may come from lstat (the journal, opened by name by SQLite) or fstat."""
    kind = "folder" if directory else "file"
    error = error or (StateError if directory else UnsafeFileError)
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{path}: is a symbolic link: refusing to follow it; remove it")
    if directory and not stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: expected a folder of orch-tui's, found something else; move it "
                    "aside")
    if not directory and not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a plain file (a symlink, fifo or folder?): refusing to write it")
    if st.st_uid != os.geteuid():
        raise error(f"{path}: the {kind} is owned by uid {st.st_uid}, not by you "
                    f"(uid {os.geteuid()}): refusing to use it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise error(f"{path}: the {kind} is writable by group or others (mode "
                    f"{stat.S_IMODE(st.st_mode):o}): refusing to use it; chmod go-w it")
    if not directory and st.st_nlink != 1:
        raise error(f"{path}: the file has {st.st_nlink} hard links: refusing to write it")


def _open_private_dir(parent_fd: int, name: str, path: Path) -> int:
    """Create `name` under `parent_fd` as 0o700 (whatever the umask) or open the existing one,
    refusing a symlink or a folder that is not private; returns its descriptor."""
    try:
        os.mkdir(name, PRIVATE_DIR_MODE, dir_fd=parent_fd)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise StateError(f"{path}: cannot create the state folder: {_reason(exc)}") from None
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise StateError(f"{path}: is a symlink or not a folder: refusing to follow it; "
                             "move it aside") from None
        raise StateError(f"{path}: cannot open the state folder: {_reason(exc)}") from None
    try:
        st = os.fstat(fd)
        if created:
            os.fchmod(fd, PRIVATE_DIR_MODE)  # mkdir's mode went through the umask
        else:
            check_private(st, path, directory=True)
            if stat.S_IMODE(st.st_mode) & 0o077:
                os.fchmod(fd, PRIVATE_DIR_MODE)  # readable by others (an older orch-tui): ours
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_private_file(dir_fd: int, name: str, path: str | Path, flags: int) -> int:
    """`name` under `dir_fd` (created 0o600), refused when a link or not a private plain file."""
    try:
        fd = os.open(name,
                     flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                     PRIVATE_FILE_MODE,
                     dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path}: is a symlink: refusing to write through it; "
                                  "remove it") from None
        raise
    try:
        check_private(os.fstat(fd), path, directory=False)
    except BaseException:
        os.close(fd)
        raise
    return fd


class RunTemp:
    """This run's folder of temporary outputs, flocked while the run lives."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path

    def unlink(self, name: str) -> None:
        """Remove a temporary output if it is there (a failed or restarted job's)."""
        try:
            os.unlink(name, dir_fd=self.fd)
        except OSError:
            pass

    def is_regular(self, name: str) -> bool:
        """True when the job left a plain file (never a symlink) under `name`."""
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode)
        except OSError:
            return False


# The folder and the descriptors it holds open, one per file.
# pylint: disable-next=too-many-instance-attributes
class StateDir:
    """`<output_dir>/.orch-tui` and its `logs/` and `tmp/`, created private and held open."""

    def __init__(self, output_dir: Path, out_fd: int, fd: int, logs_fd: int, tmp_fd: int) -> None:
        self.output_dir = output_dir
        self.path = output_dir / STATE_DIR_NAME
        self.logs_path = self.path / LOGS_DIR_NAME
        self._logs_text = str(self.logs_path)
        self.out_fd, self.fd, self.logs_fd, self.tmp_fd = out_fd, fd, logs_fd, tmp_fd
        self._shards: dict[str, int] = {}  # shard folder name -> its descriptor, opened once
        self._identity = _identity(os.fstat(fd))
        self.run_temp: RunTemp | None = None

    @classmethod
    def open(cls, output_dir: Path) -> StateDir:
        """Create the output folder (as the operator's umask says) and the private state folder
        in it; raise StateError with one clear line when either cannot be used."""
        output_dir = Path(output_dir)
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
            out_fd = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateError(f"{output_dir}: cannot create the output folder: "
                             f"{_reason(exc)}") from None
        fds = [out_fd]
        try:
            state = output_dir / STATE_DIR_NAME
            fds.append(_open_private_dir(out_fd, STATE_DIR_NAME, state))
            fds.append(_open_private_dir(fds[1], LOGS_DIR_NAME, state / LOGS_DIR_NAME))
            fds.append(_open_private_dir(fds[1], TMP_DIR_NAME, state / TMP_DIR_NAME))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return cls(output_dir, out_fd, fds[1], fds[2], fds[3])

    # --- files of our own

    def open_file(self, name: str, flags: int) -> int:
        """Open (creating 0o600) a file of ours by name, never through a symlink or a hard link,
        and only if it is a plain file we own that nobody else may write.

        Raises OSError for filesystem errors (full, read-only, too many files) and
        UnsafeFileError for a planted link or a foreign file."""
        return _open_private_file(self.fd, name, self.path / name, flags)

    def open_log(self, path: str | Path, flags: int = os.O_WRONLY | os.O_APPEND) -> int:
        """A job's log (by default for appending; descriptor, close-on-exec), opened in its
        shard folder's descriptor: no symlink on the way, at the folder or at the file."""
        dir_fd, name = self.log_location(path)
        return _open_private_file(dir_fd, name, path, flags)

    def log_location(self, path: str | Path, *, create: bool = True) -> tuple[int, str]:
        """(folder descriptor, file name) of a job's log: `logs/<shard>/<name>` (see
        plan.log_shard) or, for a journal row of an older run, `logs/<name>`.

        A shard folder is made (0o700) and opened once per run, then held. A symlink planted
        in its place is removed (the link, never its target) and a real folder made; anything
        else unusable raises UnsafeFileError, which fails the job alone. With `create` false a
        missing shard raises FileNotFoundError. A path outside the logs folder is refused.

        Split as text, not as a Path: this runs twice per job launch, where parsing paths was a
        tenth of the dispatcher's time. A text that is not in normal form is normalized once."""
        text = os.fspath(path)
        folder, _, name = text.rpartition("/")
        if not name:
            raise UnsafeFileError(f"{path}: not a log file name")
        if folder != self._logs_text:
            shard_parent, _, shard = folder.rpartition("/")
            if shard_parent != self._logs_text:
                normal = str(Path(text))
                if normal != text:
                    return self.log_location(normal, create=create)
                shard = ""
            if not shard.isdigit():
                raise UnsafeFileError(f"{path}: not in the logs folder {self.logs_path}")
            fd = self._shards.get(shard)
            if fd is None:
                fd = self._open_shard(shard, Path(folder), create)
                self._shards[shard] = fd
            return fd, name
        return self.logs_fd, name

    def _open_shard(self, shard: str, folder: Path, create: bool) -> int:
        """Make (0o700) and open one shard folder. A filesystem error (full, out of inodes)
        stays an OSError, which stops launching as any systemic error does."""
        try:
            st = os.stat(shard, dir_fd=self.logs_fd, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                raise
        else:
            if stat.S_ISLNK(st.st_mode):
                os.unlink(shard, dir_fd=self.logs_fd)  # the link goes; its target is untouched
        if create:
            try:
                os.mkdir(shard, PRIVATE_DIR_MODE, dir_fd=self.logs_fd)
            except FileExistsError:
                pass
        try:
            return _open_private_dir(self.logs_fd, shard, folder)
        except StateError as exc:
            raise UnsafeFileError(str(exc)) from None

    def remove_log(self, path: Path) -> None:
        """Delete a job's log (keep_logs: failed) through the held folder descriptors, never
        following a link; a log that is not there is no error."""
        try:
            dir_fd, name = self.log_location(path, create=False)
            if stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=dir_fd)
        except (OSError, UnsafeFileError):
            pass

    def remove_empty_shards(self) -> None:
        """Drop the shard folders a pruning left empty (rmdir refuses a folder with files)."""
        for shard, fd in list(self._shards.items()):
            try:
                os.rmdir(shard, dir_fd=self.logs_fd)
            except OSError:
                continue
            os.close(fd)
            del self._shards[shard]

    def intact(self) -> bool:
        """False once the state folder was removed or replaced under us (stop launching)."""
        try:
            return _identity(os.stat(self.path, follow_symlinks=False)) == self._identity
        except OSError:
            return False

    # --- temporary outputs

    def make_run_temp(self, token: str) -> RunTemp:
        """Create and flock `tmp/<token>` for this run (StateError when impossible)."""
        path = self.path / TMP_DIR_NAME / token
        fd = _open_private_dir(self.tmp_fd, token, path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StateError(f"{path}: cannot lock this run's temporary folder: "
                             f"{_reason(exc)}") from None
        self.run_temp = RunTemp(fd, path)
        return self.run_temp

    def remove_dead_runs(self) -> list[str]:
        """Delete the temporary folders of runs that are provably dead (their flock is free);
        a live run's folder, or anything not a folder, is left alone. Returns what went."""
        removed: list[str] = []
        try:
            names = os.listdir(self.tmp_fd)
        except OSError:
            return removed
        for name in names:
            if self.run_temp is not None and name == self.run_temp.path.name:
                continue
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=self.tmp_fd)
            except OSError:
                continue  # a symlink or a file someone put there: not ours to delete
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # its run is alive
            try:
                # rmtree with dir_fd never follows symlinks; the flock stays held meanwhile.
                shutil.rmtree(name, dir_fd=self.tmp_fd)
                removed.append(name)
            except OSError:
                pass
            finally:
                os.close(fd)
        return removed

    def release_run_temp(self) -> None:
        """The run is over: remove its (by now empty) temporary folder and unlock it."""
        temp, self.run_temp = self.run_temp, None
        if temp is None:
            return
        try:
            shutil.rmtree(temp.path.name, dir_fd=self.tmp_fd)
        except OSError:
            pass  # the state folder itself is gone: nothing left to tidy
        os.close(temp.fd)

    def close(self) -> None:
        """Release every descriptor (idempotent)."""
        self.release_run_temp()
        for fd in self._shards.values():
            os.close(fd)
        self._shards.clear()
        for name in ("tmp_fd", "logs_fd", "fd", "out_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def is_systemic(exc: OSError) -> bool:
    """True for errors that would hit every job alike (stop launching rather than fail each)."""
    return exc.errno in SYSTEMIC_ERRNOS
