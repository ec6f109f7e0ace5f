"""A Linux driver that survives its terminal hanging up (the SSH connection dropped).

On a hangup the kernel sends SIGHUP and then SIGCONT. Textual's SIGCONT handler takes that for a
resume from suspend and restarts application mode on the dead terminal: a second writer thread
dies on EIO, its queue fills, and the event loop — which also runs the orchestrator — blocks for
good. Here a write error is dropped output, and a SIGCONT without a terminal is ignored, so the
app can close and the run goes on headless.
"""

from __future__ import annotations

import termios
from typing import Any, TextIO

from textual.drivers.linux_driver import LinuxDriver


class _HangupTolerantFile:
    """The terminal as Textual's writer thread sees it: EIO after a hangup loses output only."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def write(self, text: str) -> int:
        """Write, or drop the text when the terminal is gone."""
        try:
            return self._file.write(text)
        except OSError:
            return 0

    def flush(self) -> None:
        """Flush, ignoring a terminal that is gone."""
        try:
            self._file.flush()
        except OSError:
            pass

    def fileno(self) -> int:
        """The terminal's file descriptor (Textual reads sizes and modes from it)."""
        return self._file.fileno()


class HangupSafeDriver(LinuxDriver):
    """LinuxDriver whose output never dies on EIO and that ignores the hangup's SIGCONT."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        file = self._file
        assert file is not None  # LinuxDriver opens the terminal in its constructor
        # A duck-typed stand-in (write, flush, fileno) for the TextIOWrapper the base declares.
        self._file = _HangupTolerantFile(file)  # type: ignore[assignment]

    def _sigcont_application(self, *args: Any) -> None:
        try:
            termios.tcgetattr(self.fileno)
        except termios.error:
            return  # hung up: there is no terminal to restart application mode on
        super()._sigcont_application(*args)
