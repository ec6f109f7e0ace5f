"""The operator's own settings (today: the theme), kept between runs in their config folder.

One small JSON file, `$XDG_CONFIG_HOME/orch-tui/settings.json` (`~/.config/orch-tui/` when the
variable is unset or not absolute, as the XDG spec says). It is a preference, never a reason to
fail: a missing file is the defaults, a corrupt or unreadable one is the defaults and one warning.
It is written whole to a temp file then renamed (a crash leaves the old file or the new one,
never half of one), 0o600 in a 0o700 folder, and never through a symlink (O_NOFOLLOW on the
folder and the file): the folder is the user's, nobody else's link may redirect the write.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SETTINGS_NAME = "settings.json"

#: A settings file is a few bytes; anything larger is not ours (and is not read into memory).
MAX_BYTES = 64 * 1024

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Settings:
    """What the operator chose; None is "the default"."""

    theme: str | None = None


class SettingsError(Exception):
    """The settings file cannot be read or written; the message says which file and why."""


def settings_dir(environ: Mapping[str, str] | None = None) -> Path:
    """orch-tui's folder in the user's config folder (XDG Base Directory)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "orch-tui"


@dataclass(frozen=True)
class SettingsFile:
    """The settings file in `folder`: read once at start, written on each change."""

    folder: Path

    @classmethod
    def default(cls) -> SettingsFile:
        """The user's settings file, where `settings_dir` says."""
        return cls(settings_dir())

    @property
    def path(self) -> Path:
        """The file itself (for messages and the README)."""
        return self.folder / SETTINGS_NAME

    def load(self) -> Settings:
        """The saved settings; defaults when there is no file yet.

        Raises SettingsError when the file exists but is not a readable settings file (a
        symlink, not a regular file, too big, not JSON, wrong types)."""
        try:
            fd = os.open(self.path, _READ_FLAGS)
        except FileNotFoundError:
            return Settings()
        except OSError as exc:
            raise self._error("cannot read", exc) from exc
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SettingsError(f"{self.path}: not a regular file")
            if info.st_size > MAX_BYTES:
                raise SettingsError(f"{self.path}: larger than {MAX_BYTES} bytes")
            data = os.read(fd, MAX_BYTES + 1)
        except OSError as exc:
            raise self._error("cannot read", exc) from exc
        finally:
            os.close(fd)
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SettingsError(f"{self.path}: not valid JSON ({exc})") from exc
        if not isinstance(document, dict):
            raise SettingsError(f"{self.path}: not a JSON object")
        theme = document.get("theme")
        if theme is not None and not isinstance(theme, str):
            raise SettingsError(f"{self.path}: \"theme\" is not a string")
        return Settings(theme=theme)

    def save(self, settings: Settings) -> None:
        """Write `settings` atomically (temp file, fsync, rename) with owner-only modes.

        Raises SettingsError when the folder cannot be made or written, or is a symlink."""
        document = {} if settings.theme is None else {"theme": settings.theme}
        data = (json.dumps(document, indent=2) + "\n").encode("utf-8")
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.folder.mkdir(mode=0o700)
            except FileExistsError:
                pass
            folder = os.open(self.folder, _DIR_FLAGS)
        except OSError as exc:
            raise self._error("cannot create the folder of", exc) from exc
        try:
            if stat.S_IMODE(os.fstat(folder).st_mode) != 0o700:
                os.fchmod(folder, 0o700)
            self._write(folder, data)
        except OSError as exc:
            raise self._error("cannot write", exc) from exc
        finally:
            os.close(folder)

    def _write(self, folder: int, data: bytes) -> None:
        temp = f".{SETTINGS_NAME}.{uuid.uuid4().hex}.tmp"
        fd = os.open(temp,
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600,
                     dir_fd=folder)
        try:
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            # rename replaces a symlink at the final name itself; it never writes through it.
            os.rename(temp, SETTINGS_NAME, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            os.unlink(temp, dir_fd=folder)
            raise
        os.fsync(folder)

    def _error(self, what: str, exc: OSError) -> SettingsError:
        return SettingsError(f"{what} {self.path}: {exc.strerror or exc}")
